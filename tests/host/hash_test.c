/*
** C unit tests for host/hash.c: SHA-256 (FIPS 180-4 examples) and HMAC-SHA256
** (RFC 4231 test cases 1, 2 and 6), including the block-boundary lengths; MD5
** (RFC 1321's test suite); CRC32 (the IEEE check value of "123456789").
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


static void check_md5 (const char *msg, const char *want) {
  md5_ctx c;
  unsigned char out[16];
  char got[33];
  md5_init(&c);
  md5_update(&c, msg, strlen(msg));
  md5_final(&c, out);
  hex(out, 16, got);
  ok(strcmp(got, want) == 0, "md5 of \"%.20s\"", msg);
}


static void check_md5_crc32 (void) {
  check_md5("", "d41d8cd98f00b204e9800998ecf8427e");
  check_md5("a", "0cc175b9c0f1b6a831c399e269772661");
  check_md5("abc", "900150983cd24fb0d6963f7d28e17f72");
  check_md5("message digest", "f96b697d7cb7938d525a2f31aaf161d0");
  check_md5("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b");
  check_md5("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f");
  check_md5("12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "57edf4a22be3c955ac49da2e2107b67a");
  ok(crc32_update(0, "123456789", 9) == 0xcbf43926u, "crc32 check value");
  ok(crc32_update(crc32_update(0, "1234", 4), "56789", 5) == 0xcbf43926u, "crc32 continued");
  ok(crc32_update(0, "", 0) == 0, "crc32 of nothing");
}


/* digest_range reads a range of a file in pieces: the same digest as the bytes in memory. */
static void check_digest_range (void) {
  char path[4096];
  const char *dir = getenv("TMPDIR");  /* tests/run gives each run its own */
  snprintf(path, sizeof path, "%s/hash_test_XXXXXX", dir && *dir ? dir : ".");
  int fd = mkstemp(path);
  static unsigned char data[200000];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (unsigned char)(i * 7 + i / 251);
  ok(fd >= 0 && write(fd, data, sizeof data) == (ssize_t)sizeof data, "a file of 200000 bytes");
  close(fd);
  unsigned char from_file[16], in_memory[16];
  char error[320];
  md5_ctx c;
  md5_init(&c);
  md5_update(&c, data + 1000, 150000);
  md5_final(&c, in_memory);
  ok(digest_range(path, 1000, 150000, from_file, error, sizeof error) == 0 &&
     memcmp(from_file, in_memory, 16) == 0, "md5 of a file range, read in pieces");
  ok(digest_range(path, 100000, 150000, from_file, error, sizeof error) != 0 &&
     strstr(error, "shorter than expected") != NULL, "a range past the end is an error");
  unlink(path);
}


int main (void) {
  check_md5_crc32();
  check_digest_range();
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
