/*
** hash.c: the hashing SigV4 needs (module "ckfb.core.hash"): SHA-256 and
** HMAC-SHA256 (FIPS 180-4, RFC 2104). ckfb signs S3 requests itself
** (stdlib/ckfb/s3.lua) instead of using CURLOPT_AWS_SIGV4: Debian's libcurl
** 7.88 signs the query unsorted, valueless parameters without "=", and the
** path without re-encoding, cannot presign a URL, and sends no payload hash
** (reference §1). Doing it here keeps it short, exact and testable, and
** costs no start-up time (libcrypto would be another library to load).
*/
#include <stdint.h>
#include <string.h>

#include "ckfb.h"

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


static const luaL_Reg hash_funcs[] = {
  {"sha256_hex", l_sha256_hex},
  {"hmac_sha256", l_hmac_sha256},
  {NULL, NULL}
};


int luaopen_ckfb_core_hash (lua_State *L) {
  luaL_newlib(L, hash_funcs);
  return 1;
}
