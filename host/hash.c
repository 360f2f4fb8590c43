/*
** hash.c: the hashing S3 needs (module "ckfb.core.hash"): SHA-256 and
** HMAC-SHA256 (FIPS 180-4, RFC 2104) for SigV4, MD5 (RFC 1321) for the
** Content-MD5 that Object Lock buckets and DeleteObjects demand, CRC32
** (IEEE 802.3) and base64 (RFC 4648). ckfb signs S3 requests itself
** (stdlib/ckfb/s3.lua) instead of using CURLOPT_AWS_SIGV4: Debian's libcurl
** 7.88 signs the query unsorted, valueless parameters without "=", and the
** path without re-encoding, cannot presign a URL, and sends no payload hash
** (reference §1). Doing it here keeps it short, exact and testable, and
** costs no start-up time (libcrypto would be another library to load).
*/
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/types.h>
#include <unistd.h>

#include "ckfb.h"
#include "loop.h"

typedef struct {
  uint32_t h[8];
  uint64_t bytes;
  unsigned char block[64];
  size_t used;
} sha256_ctx;

static const uint32_t K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))


static void sha256_init (sha256_ctx *c) {
  static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(c->h, h0, sizeof h0);
  c->bytes = 0;
  c->used = 0;
}


static void sha256_block (sha256_ctx *c, const unsigned char *p) {
  uint32_t w[64], s[8];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  memcpy(s, c->h, sizeof s);
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = s[7] + (ROTR(s[4], 6) ^ ROTR(s[4], 11) ^ ROTR(s[4], 25)) +
                  ((s[4] & s[5]) ^ (~s[4] & s[6])) + K[i] + w[i];
    uint32_t t2 = (ROTR(s[0], 2) ^ ROTR(s[0], 13) ^ ROTR(s[0], 22)) +
                  ((s[0] & s[1]) ^ (s[0] & s[2]) ^ (s[1] & s[2]));
    memmove(s + 1, s, 7 * sizeof s[0]);
    s[4] += t1;
    s[0] = t1 + t2;
  }
  for (int i = 0; i < 8; i++)
    c->h[i] += s[i];
}


static void sha256_update (sha256_ctx *c, const void *data, size_t len) {
  const unsigned char *p = data;
  c->bytes += len;
  while (len > 0) {
    size_t take = 64 - c->used < len ? 64 - c->used : len;
    memcpy(c->block + c->used, p, take);
    c->used += take;
    p += take;
    len -= take;
    if (c->used == 64) {
      sha256_block(c, c->block);
      c->used = 0;
    }
  }
}


static void sha256_final (sha256_ctx *c, unsigned char out[32]) {
  uint64_t bits = c->bytes * 8;
  unsigned char pad[72] = {0x80};
  size_t padlen = (c->used < 56 ? 56 : 120) - c->used;
  for (int i = 0; i < 8; i++)
    pad[padlen + i] = (unsigned char)(bits >> (56 - 8 * i));
  sha256_update(c, pad, padlen + 8);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (unsigned char)(c->h[i] >> 24);
    out[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
    out[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
    out[4 * i + 3] = (unsigned char)c->h[i];
  }
}


static void sha256 (const void *data, size_t len, unsigned char out[32]) {
  sha256_ctx c;
  sha256_init(&c);
  sha256_update(&c, data, len);
  sha256_final(&c, out);
}


/* RFC 2104, with keys longer than a block hashed first. */
static void hmac_sha256 (const unsigned char *key, size_t klen, const void *data, size_t len,
                         unsigned char out[32]) {
  unsigned char k[64] = {0}, pad[64], inner[32];
  if (klen > 64)
    sha256(key, klen, k);
  else
    memcpy(k, key, klen);
  sha256_ctx c;
  for (int i = 0; i < 64; i++)
    pad[i] = k[i] ^ 0x36;
  sha256_init(&c);
  sha256_update(&c, pad, 64);
  sha256_update(&c, data, len);
  sha256_final(&c, inner);
  for (int i = 0; i < 64; i++)
    pad[i] = k[i] ^ 0x5c;
  sha256_init(&c);
  sha256_update(&c, pad, 64);
  sha256_update(&c, inner, 32);
  sha256_final(&c, out);
}


static void push_hex (lua_State *L, const unsigned char *bytes, size_t n) {
  static const char digits[] = "0123456789abcdef";
  char hex[64];
  for (size_t i = 0; i < n && i < 32; i++) {
    hex[2 * i] = digits[bytes[i] >> 4];
    hex[2 * i + 1] = digits[bytes[i] & 15];
  }
  lua_pushlstring(L, hex, 2 * n);
}


/* s3.sha256_hex(data) -> lower-case hex digest */
static int l_sha256_hex (lua_State *L) {
  size_t len;
  const char *data = luaL_checklstring(L, 1, &len);
  unsigned char out[32];
  sha256(data, len, out);
  push_hex(L, out, 32);
  return 1;
}


/* s3.hmac_sha256(key, data [, "hex"]) -> the raw 32-byte MAC (or hex) */
static int l_hmac_sha256 (lua_State *L) {
  size_t klen, len;
  const char *key = luaL_checklstring(L, 1, &klen);
  const char *data = luaL_checklstring(L, 2, &len);
  unsigned char out[32];
  hmac_sha256((const unsigned char *)key, klen, data, len, out);
  if (lua_toboolean(L, 3))
    push_hex(L, out, 32);
  else
    lua_pushlstring(L, (const char *)out, 32);
  return 1;
}


/* ------------------------------------------------------------------ MD5 */

typedef struct {
  uint32_t a, b, c, d;
  uint64_t bytes;
  unsigned char block[64];
  size_t used;
} md5_ctx;

static const uint32_t MD5_T[64] = {
  0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
  0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
  0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
  0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
  0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
  0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
  0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
  0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

static void md5_init (md5_ctx *c) {
  c->a = 0x67452301; c->b = 0xefcdab89; c->c = 0x98badcfe; c->d = 0x10325476;
  c->bytes = 0;
  c->used = 0;
}

#define MD5_STEP(f, a, b, c, d, x, t, s) \
  (a) += f((b), (c), (d)) + (x) + (t); (a) = ((a) << (s) | (a) >> (32 - (s))) + (b)
#define MD5_F(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define MD5_G(x, y, z) ((y) ^ ((z) & ((x) ^ (y))))
#define MD5_H(x, y, z) ((x) ^ (y) ^ (z))
#define MD5_I(x, y, z) ((y) ^ ((x) | ~(z)))

/* One 64-byte block: RFC 1321's four rounds of sixteen steps, unrolled by round. */
static void md5_block (md5_ctx *c, const unsigned char *p) {
  uint32_t x[16], a = c->a, b = c->b, cc = c->c, d = c->d;
  for (int i = 0; i < 16; i++)  /* little-endian words */
    x[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
           (uint32_t)p[4 * i + 3] << 24;
  for (int i = 0; i < 16; i += 4) {
    MD5_STEP(MD5_F, a, b, cc, d, x[i], MD5_T[i], 7);
    MD5_STEP(MD5_F, d, a, b, cc, x[i + 1], MD5_T[i + 1], 12);
    MD5_STEP(MD5_F, cc, d, a, b, x[i + 2], MD5_T[i + 2], 17);
    MD5_STEP(MD5_F, b, cc, d, a, x[i + 3], MD5_T[i + 3], 22);
  }
  for (int i = 16; i < 32; i += 4) {
    MD5_STEP(MD5_G, a, b, cc, d, x[(5 * i + 1) & 15], MD5_T[i], 5);
    MD5_STEP(MD5_G, d, a, b, cc, x[(5 * i + 6) & 15], MD5_T[i + 1], 9);
    MD5_STEP(MD5_G, cc, d, a, b, x[(5 * i + 11) & 15], MD5_T[i + 2], 14);
    MD5_STEP(MD5_G, b, cc, d, a, x[(5 * i + 16) & 15], MD5_T[i + 3], 20);
  }
  for (int i = 32; i < 48; i += 4) {
    MD5_STEP(MD5_H, a, b, cc, d, x[(3 * i + 5) & 15], MD5_T[i], 4);
    MD5_STEP(MD5_H, d, a, b, cc, x[(3 * i + 8) & 15], MD5_T[i + 1], 11);
    MD5_STEP(MD5_H, cc, d, a, b, x[(3 * i + 11) & 15], MD5_T[i + 2], 16);
    MD5_STEP(MD5_H, b, cc, d, a, x[(3 * i + 14) & 15], MD5_T[i + 3], 23);
  }
  for (int i = 48; i < 64; i += 4) {
    MD5_STEP(MD5_I, a, b, cc, d, x[(7 * i) & 15], MD5_T[i], 6);
    MD5_STEP(MD5_I, d, a, b, cc, x[(7 * i + 7) & 15], MD5_T[i + 1], 10);
    MD5_STEP(MD5_I, cc, d, a, b, x[(7 * i + 14) & 15], MD5_T[i + 2], 15);
    MD5_STEP(MD5_I, b, cc, d, a, x[(7 * i + 21) & 15], MD5_T[i + 3], 21);
  }
  c->a += a; c->b += b; c->c += cc; c->d += d;
}

static void md5_update (md5_ctx *c, const void *data, size_t len) {
  const unsigned char *p = data;
  c->bytes += len;
  while (c->used == 0 && len >= 64) {  /* whole blocks straight from the input */
    md5_block(c, p);
    p += 64; len -= 64;
  }
  while (len > 0) {
    size_t take = 64 - c->used < len ? 64 - c->used : len;
    memcpy(c->block + c->used, p, take);
    c->used += take; p += take; len -= take;
    if (c->used == 64) { md5_block(c, c->block); c->used = 0; }
  }
}

static void md5_final (md5_ctx *c, unsigned char out[16]) {
  uint64_t bits = c->bytes * 8;
  unsigned char pad = 0x80, zero = 0, len[8];
  md5_update(c, &pad, 1);
  while (c->used != 56) md5_update(c, &zero, 1);
  for (int i = 0; i < 8; i++) len[i] = (unsigned char)(bits >> (8 * i));
  md5_update(c, len, 8);
  uint32_t h[4] = {c->a, c->b, c->c, c->d};
  for (int i = 0; i < 16; i++) out[i] = (unsigned char)(h[i / 4] >> (8 * (i % 4)));
}


/* ---------------------------------------------------------------- CRC32 */

static uint32_t crc32_update (uint32_t crc, const void *data, size_t len) {
  static uint32_t table[256];
  if (table[1] == 0) {  /* the reflected IEEE polynomial; computed once, the same each time */
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t r = i;
      for (int k = 0; k < 8; k++) r = r & 1 ? 0xedb88320u ^ (r >> 1) : r >> 1;
      table[i] = r;
    }
  }
  const unsigned char *p = data;
  crc = ~crc;
  while (len--) crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}


/* --------------------------------------------------------------- base64 */

static void push_base64 (lua_State *L, const unsigned char *p, size_t n) {
  static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    char q[4] = {A[v >> 18 & 63], A[v >> 12 & 63], i + 1 < n ? A[v >> 6 & 63] : '=', i + 2 < n ? A[v & 63] : '='};
    luaL_addlstring(&b, q, 4);
  }
  luaL_pushresult(&b);
}


/* ------------------------------------------------------------ Lua side */

/* hash.md5(data) -> the raw 16-byte digest */
static int l_md5 (lua_State *L) {
  size_t len;
  const char *data = luaL_checklstring(L, 1, &len);
  md5_ctx c;
  unsigned char out[16];
  md5_init(&c);
  md5_update(&c, data, len);
  md5_final(&c, out);
  lua_pushlstring(L, (const char *)out, 16);
  return 1;
}


/* hash.crc32(data [, crc]) -> the CRC32 of data, continued from crc */
static int l_crc32 (lua_State *L) {
  size_t len;
  const char *data = luaL_checklstring(L, 1, &len);
  uint32_t crc = (uint32_t)luaL_optinteger(L, 2, 0);
  lua_pushinteger(L, crc32_update(crc, data, len));
  return 1;
}


/* hash.base64(bytes) -> standard base64, padded */
static int l_base64 (lua_State *L) {
  size_t len;
  const char *data = luaL_checklstring(L, 1, &len);
  push_base64(L, (const unsigned char *)data, len);
  return 1;
}


/*
** The MD5 of `length` bytes of a file from `offset`, read in 64 KiB pieces (a
** part of a large upload is never held in memory). Touches no Lua state, so a
** worker thread can run it. Returns 0, or -1 with `error` set.
*/
static int digest_range (const char *path, int64_t offset, int64_t length, unsigned char md5[16],
                         char *error, size_t error_size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL || fseeko(f, (off_t)offset, SEEK_SET) != 0) {
    snprintf(error, error_size, "%s: %s", path, strerror(errno));
    if (f) fclose(f);
    return -1;
  }
  md5_ctx c;
  static _Thread_local unsigned char buf[65536];  /* one per thread: the workers hash in parallel */
  md5_init(&c);
  while (length > 0) {
    size_t want = length < (int64_t)sizeof buf ? (size_t)length : sizeof buf;
    size_t got = fread(buf, 1, want, f);
    if (got == 0) break;
    md5_update(&c, buf, got);
    length -= (int64_t)got;
  }
  int failed = ferror(f) || length > 0;
  fclose(f);
  if (failed) {
    snprintf(error, error_size, "%s: shorter than expected, or unreadable", path);
    return -1;
  }
  md5_final(&c, md5);
  return 0;
}


static void check_range (lua_State *L, const char **path, lua_Integer *offset, lua_Integer *length) {
  *path = luaL_checkstring(L, 1);
  *offset = luaL_checkinteger(L, 2);
  *length = luaL_checkinteger(L, 3);
  luaL_argcheck(L, *offset >= 0 && *length >= 0, 2, "offset and length must not be negative");
}


/* hash.md5_file(path, offset, length) -> the raw MD5 digest | nil, message */
static int l_md5_file (lua_State *L) {
  const char *path;
  lua_Integer offset, length;
  check_range(L, &path, &offset, &length);
  unsigned char md5[16];
  char error[320];
  if (digest_range(path, offset, length, md5, error, sizeof error) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, error);
    return 2;
  }
  lua_pushlstring(L, (const char *)md5, 16);
  return 1;
}


/*
** The same in a worker thread, as a loop op: hashing a 64 MiB part takes a
** tenth of a second, during which the loop would otherwise stop every
** transfer. The thread touches only this struct, and signals an eventfd.
*/
typedef struct {
  loop_op op;
  pthread_t thread;
  int running;       /* started and not joined */
  int efd;
  char *path;
  int64_t offset, length;
  unsigned char md5[16];
  int failed;
  char error[320];
} digest_op;

static void *digest_thread (void *arg) {
  digest_op *d = arg;
  d->failed = digest_range(d->path, d->offset, d->length, d->md5, d->error, sizeof d->error) != 0;
  uint64_t one = 1;
  ssize_t w = write(d->efd, &one, sizeof one);
  (void)w;  /* an eventfd write of 1 cannot fail short of overflow */
  return NULL;
}

static void digest_join (digest_op *d) {
  if (d->running) {
    pthread_join(d->thread, NULL);
    d->running = 0;
  }
}

static int digest_add_fds (loop_op *op, struct curl_waitfd *fds) {
  digest_op *d = (digest_op *)op;
  fds[0].fd = d->efd;
  fds[0].events = CURL_WAIT_POLLIN;
  fds[0].revents = 0;
  return 1;
}

static void digest_on_fds (loop_op *op, const struct curl_waitfd *fds, int n) {
  if (n < 1 || !(fds[0].revents & CURL_WAIT_POLLIN))
    return;
  digest_join((digest_op *)op);
  loop_op_finish(op);
}

static int digest_result (loop_op *op, lua_State *L) {
  digest_op *d = (digest_op *)op;
  if (op->cancelled || d->failed) {
    luaL_pushfail(L);
    lua_pushstring(L, op->cancelled ? "cancelled" : d->error);
    return 2;
  }
  lua_pushlstring(L, (const char *)d->md5, 16);
  return 1;
}

static void digest_release (loop_op *op) {
  digest_op *d = (digest_op *)op;
  digest_join(d);  /* a cancelled digest still finishes its read: at most one part */
  if (d->efd >= 0)
    close(d->efd);
  d->efd = -1;
  free(d->path);
  d->path = NULL;
}

static const op_class digest_class = {
  .kind = "digest",
  .add_fds = digest_add_fds,
  .on_fds = digest_on_fds,
  .push_result = digest_result,
  .release = digest_release,
};


/* hash.md5_file_op(path, offset, length) -> op; its result: the raw MD5 | nil, message */
static int l_md5_file_op (lua_State *L) {
  const char *path;
  lua_Integer offset, length;
  check_range(L, &path, &offset, &length);
  digest_op *d = (digest_op *)loop_op_new(L, sizeof *d, &digest_class);
  d->efd = eventfd(0, EFD_CLOEXEC);
  d->path = strdup(path);
  d->offset = offset;
  d->length = length;
  if (d->efd < 0 || d->path == NULL || pthread_create(&d->thread, NULL, digest_thread, d) != 0) {
    int e = errno;
    digest_release(&d->op);
    return luaL_error(L, "hash.md5_file_op: cannot start a worker: %s", strerror(e));
  }
  d->running = 1;
  loop_op_start(L, -1);
  return 1;
}


static const luaL_Reg hash_funcs[] = {
  {"md5", l_md5},
  {"md5_file", l_md5_file},
  {"md5_file_op", l_md5_file_op},
  {"crc32", l_crc32},
  {"base64", l_base64},
  {"sha256_hex", l_sha256_hex},
  {"hmac_sha256", l_hmac_sha256},
  {NULL, NULL}
};


int luaopen_ckfb_core_hash (lua_State *L) {
  luaL_newlib(L, hash_funcs);
  return 1;
}
