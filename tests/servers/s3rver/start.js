// Starts @20minutes/s3rver for ckfb's tests (the package has no CLI).
// Usage: node --openssl-legacy-provider start.js PORTFILE DATADIR [CERT KEY]
// (the legacy provider: s3rver's ListObjectsV2 continuation tokens use DES).
// Listens on 127.0.0.1 on a free port, writes it to PORTFILE; keys:
// AKIDTEST / testsecret (and s3rver's own S3RVER / S3RVER). Buckets: testbkt and
// those named in $S3_BUCKETS (comma-separated).
const fs = require('fs');
const S3rver = require('@20minutes/s3rver');
const Account = require('@20minutes/s3rver/lib/models/account');

const [portfile, directory, cert, key] = process.argv.slice(2);
Account.DUMMY_ACCOUNT.createKeyPair('AKIDTEST', 'testsecret');
const options = {
  address: '127.0.0.1', port: 0, silent: true, directory,
  configureBuckets: ['testbkt', ...(process.env.S3_BUCKETS || '').split(',').filter(Boolean)]
    .map((name) => ({ name, configs: [] })),
};
if (cert && key) {
  options.cert = fs.readFileSync(cert);
  options.key = fs.readFileSync(key);
}
new S3rver(options).run().then(({ port }) => {
  fs.writeFileSync(portfile + '.tmp', String(port));
  fs.renameSync(portfile + '.tmp', portfile);
});
