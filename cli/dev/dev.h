// dev.h — the developer tools of the protsae front command: subcommands of the one binary, listed
// apart in `protsae help`. They check the pipeline rather than serve a user's analysis.
#ifndef PS_CLI_DEV_H
#define PS_CLI_DEV_H

int cli_consume(int argc, char **argv);       // a pipeline sink that checks and counts what arrives
int cli_recovery(int argc, char **argv);      // planted-direction recovery of a trained SAE
int cli_encode_check(int argc, char **argv);  // the feature store's codes against a direct encode
int cli_esm2_random(int argc, char **argv);   // an ESM2 checkpoint with random weights (benchmarks)

#endif
