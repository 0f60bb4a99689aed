// log.h — one line per event to stderr: `ts stage LEVEL msg key=value`.
#ifndef PS_LOG_H
#define PS_LOG_H

typedef enum { PS_LOG_DEBUG = 0, PS_LOG_INFO, PS_LOG_WARN, PS_LOG_ERROR } ps_log_level_t;

// Set the stage name printed on every line (copied) and the minimum level.
// PROTSAE_LOG_LEVEL=debug|info|warn|error overrides the level at init.
void ps_log_init(const char *stage);
void ps_log_set_level(ps_log_level_t lvl);
void ps_log(ps_log_level_t lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define PS_DEBUG(...) ps_log(PS_LOG_DEBUG, __VA_ARGS__)
#define PS_INFO(...) ps_log(PS_LOG_INFO, __VA_ARGS__)
#define PS_WARN(...) ps_log(PS_LOG_WARN, __VA_ARGS__)
#define PS_ERROR(...) ps_log(PS_LOG_ERROR, __VA_ARGS__)

#endif
