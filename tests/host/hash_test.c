/*
** C unit tests for host/hash.c: SHA-256 (FIPS 180-4 examples) and HMAC-SHA256
** (RFC 4231 test cases 1, 2 and 6), including the block-boundary lengths.
*/
#include "../../host/hash.c"

#include "tap.h"


static void hex (const unsigned char *b, size_t n, char *out) {
  for (size_t i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", b[i]);
}


static void check_sha (const char *msg, size_t len, const char *want) {
  unsigned char out[32];
  char got[65];
  sha256(msg, len, out);
  hex(out, 32, got);
  ok(strcmp(got, want) == 0, "sha256 of %zu bytes", len);
}


static void check_hmac (const char *key, size_t klen, const char *data, const char *want, const char *name) {
  unsigned char out[32];
  char got[65];
  hmac_sha256((const unsigned char *)key, klen, data, strlen(data), out);
  hex(out, 32, got);
  ok(strcmp(got, want) == 0, "hmac-sha256 %s", name);
}


int main (void) {
  check_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  check_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  check_sha(two_blocks, strlen(two_blocks), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  char million[1000000];
  memset(million, 'a', sizeof million);
  check_sha(million, sizeof million, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  char k1[20];
  memset(k1, 0x0b, sizeof k1);
  check_hmac(k1, sizeof k1, "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", "RFC 4231 case 1");
  check_hmac("Jefe", 4, "what do ya want for nothing?",
             "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", "RFC 4231 case 2");
  char k6[131];
  memset(k6, 0xaa, sizeof k6);
  check_hmac(k6, sizeof k6, "Test Using Larger Than Block-Size Key - Hash Key First",
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", "RFC 4231 case 6 (long key)");
  return tap_done();
}
