#include "signals.h"

#include <string.h>
#include <unistd.h>

volatile sig_atomic_t ps_stop_flag = 0;

static void on_signal(int sig) {
  (void)sig;
  if (ps_stop_flag) _exit(130);
  ps_stop_flag = 1;
}

void ps_signals_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

int ps_signals_stop_requested(void) { return ps_stop_flag != 0; }
