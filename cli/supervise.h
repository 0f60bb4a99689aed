// supervise.h — one supervisor for a topology of stage processes (protsae demo, protsae run): a
// table of stage specs (command, log file, restart policy, role) started in one process group,
// restarted when they fail, stopped together.
//
// Roles. A sink's exit 0 is the topology's result: the run is done when every sink has exited 0
// (a trainer, a scorer). A service runs until told to stop (readers, encoders, interpreters); it
// may also end by itself with 0 (a reader that has sent its stream), which is fine, and it is
// not started again. When every sink is done, the services still running get SIGTERM and, after
// stop_ms, SIGKILL.
//
// Failures. A stage that exits non-zero or is killed by a signal is restarted per its policy,
// with a line "! NAME exited with status S (killed): restarting it (see logs/NAME.log)" on out.
// Stages sharing a group > 0 restart together (a training reader and its trainer: the other
// members are killed and every member started again, in table order, with restart_argv). A stage
// past its max_restarts (or with policy never) fails the run: everything is stopped and the last
// lines of that stage's log are printed on err_out.
//
// Signals. While sv_run runs, SIGINT and SIGTERM of this process are caught: the first forwards
// SIGTERM to the stages' process group (so Ctrl-C stops the whole topology, in order: the stages
// are not in the terminal's foreground group), then SIGKILL after stop_ms; a second one SIGKILLs
// at once. The previous handlers are restored on return.
//
// Children: stdin /dev/null, stdout and stderr appended to the stage's log. Only the stages'
// own pids are waited for (other children of the caller are left alone).
#ifndef PS_CLI_SUPERVISE_H
#define PS_CLI_SUPERVISE_H

#include <stdio.h>
#include <sys/types.h>

#include "err.h"

#define SV_MAX_STAGES 64

typedef enum { SV_SERVICE = 0, SV_SINK = 1 } sv_role_t;
typedef enum { SV_RESTART_NEVER = 0, SV_RESTART_ON_FAILURE = 1 } sv_restart_t;

typedef struct sv_stage {
  const char *name;           // "trainer", "features-encoder-1": messages
  char *const *argv;          // argv[0] = path of the executable; NULL-terminated; borrowed for the run
  char *const *restart_argv;  // argv of the later starts (e.g. with --resume 1); NULL = argv
  const char *log;            // stdout and stderr appended here
  sv_role_t role;
  sv_restart_t restart;
  int max_restarts;           // SV_RESTART_ON_FAILURE: restarts allowed (over the whole run)
  int group;                  // > 0: a failure of one member restarts all members of the group
} sv_stage_t;

typedef struct sv_stage_result {
  int status;    // last exit: exit code, 128 + signal when killed; -1 never started
  int restarts;  // times started again
  int done;      // ended by itself with status 0 (not stopped by the supervisor)
} sv_stage_result_t;

typedef struct sv_result {
  size_t n;
  sv_stage_result_t stage[SV_MAX_STAGES];  // in table order
  int failed;      // index of the stage that failed the run, -1 when none
  int signal;      // SIGINT / SIGTERM that stopped the run, 0 when none
  int restarts;    // failures restarted, over all stages
  double seconds;  // wall time of the run
} sv_result_t;

typedef struct sv_opts {
  void (*poll)(void *ctx);   // called every ~200 ms while the stages run (progress); may be NULL
  void (*quiet)(void *ctx);  // called before the supervisor prints (clear a progress line); may be NULL
  void *ctx;
  int stop_ms;               // SIGTERM -> SIGKILL grace, ms (0 = 10000)
  int tail_lines;            // lines of a failed stage's log printed (0 = 8)
  FILE *out;                 // restart lines (NULL = stdout)
  FILE *err_out;             // failure messages and the log tail (NULL = stderr)
  const char *indent;        // before each restart line (NULL = "      ")
} sv_opts_t;

// Run the topology: n <= SV_MAX_STAGES stages, at least one sink. res (may be NULL) is filled
// in any case. Returns 0 when every sink exited 0; PS_EINTR when a signal stopped the run;
// PS_ESTATE when a stage failed past its restarts or could not be started (err names it).
int sv_run(const sv_stage_t *stages, size_t n, const sv_opts_t *opts, sv_result_t *res, ps_err_t *err);

#endif
