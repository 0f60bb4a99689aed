// signals.h — graceful shutdown. The first SIGTERM/SIGINT sets a flag the loop polls (finish
// the batch, commit, exit 0); a second one exits at once (status 130). The handler only sets a
// volatile sig_atomic_t. SIGPIPE is ignored.
#ifndef PS_SIGNALS_H
#define PS_SIGNALS_H

#include <signal.h>

void ps_signals_install(void);
int ps_signals_stop_requested(void);
// The flag itself, for loops that want to pass it down (wire_send polls it).
extern volatile sig_atomic_t ps_stop_flag;

#endif
