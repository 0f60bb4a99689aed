// pool.c — see pool.h.
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct ps_pool {
  int n;
  pthread_t *threads;
  pthread_mutex_t mu;
  pthread_cond_t start, done;
  uint64_t generation;   // bumped for each run
  int pending;           // workers still running the current job
  int quit;
  ps_pool_fn fn;
  void *ctx;
};

typedef struct {
  ps_pool_t *p;
  int tid;
} worker_arg_t;

static void *worker(void *arg) {
  worker_arg_t *wa = arg;
  ps_pool_t *p = wa->p;
  int tid = wa->tid;
  free(wa);
  uint64_t seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->quit && p->generation == seen) pthread_cond_wait(&p->start, &p->mu);
    if (p->quit) break;
    seen = p->generation;
    ps_pool_fn fn = p->fn;
    void *ctx = p->ctx;
    pthread_mutex_unlock(&p->mu);
    fn(ctx, tid, p->n);
    pthread_mutex_lock(&p->mu);
    if (--p->pending == 0) pthread_cond_signal(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

ps_pool_t *ps_pool_new(int nthreads) {
  if (nthreads <= 0) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    nthreads = c > 0 ? (int)c : 1;
  }
  ps_pool_t *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->n = nthreads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->start, NULL);
  pthread_cond_init(&p->done, NULL);
  p->threads = calloc((size_t)nthreads, sizeof *p->threads);
  if (!p->threads) { free(p); return NULL; }
  for (int i = 1; i < nthreads; i++) {
    worker_arg_t *wa = malloc(sizeof *wa);
    int rc = wa ? 0 : ENOMEM;
    if (wa) {
      wa->p = p;
      wa->tid = i;
      rc = pthread_create(&p->threads[i], NULL, worker, wa);
      if (rc) free(wa);
    }
    if (rc) {
      p->n = i;  // destroy joins the ones started
      ps_pool_destroy(&p);
      errno = rc;
      return NULL;
    }
  }
  return p;
}

void ps_pool_destroy(ps_pool_t **pp) {
  if (!pp || !*pp) return;
  ps_pool_t *p = *pp;
  pthread_mutex_lock(&p->mu);
  p->quit = 1;
  pthread_cond_broadcast(&p->start);
  pthread_mutex_unlock(&p->mu);
  for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->start);
  pthread_cond_destroy(&p->done);
  free(p->threads);
  free(p);
  *pp = NULL;
}

int ps_pool_size(const ps_pool_t *p) { return p ? p->n : 1; }

void ps_pool_run(ps_pool_t *p, ps_pool_fn fn, void *ctx) {
  if (!p || p->n == 1) {
    fn(ctx, 0, 1);
    return;
  }
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->ctx = ctx;
  p->pending = p->n - 1;
  p->generation++;
  pthread_cond_broadcast(&p->start);
  pthread_mutex_unlock(&p->mu);
  fn(ctx, 0, p->n);
  pthread_mutex_lock(&p->mu);
  while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}
