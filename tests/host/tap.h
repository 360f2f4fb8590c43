#ifndef CKFB_TAP_H
#define CKFB_TAP_H
/* A minimal TAP producer for the C unit tests; tests/run counts the lines. */
#include <stdio.h>

static int tap_n = 0, tap_failed = 0;

/* cond is evaluated once: it may have effects (a write, a read). */
#define ok(cond, ...) do { \
    int tap_ok_ = (cond) != 0; \
    tap_n++; \
    if (tap_ok_) printf("ok %d - ", tap_n); \
    else { printf("not ok %d - ", tap_n); tap_failed++; } \
    printf(__VA_ARGS__); \
    printf("\n"); \
    if (!tap_ok_) printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
  } while (0)

static int tap_done (void) {
  printf("1..%d\n", tap_n);
  return tap_failed != 0;
}

#endif
