// Runs s3rver (a real S3-protocol server) for the integration tests: argv = port, directory, buckets.
// Must run with NODE_OPTIONS=--openssl-legacy-provider (s3rver's listing uses a DES cipher).
const S3rver = require('s3rver');
const [port, directory, buckets] = process.argv.slice(2);
const server = new S3rver({
  port: Number(port),
  address: '127.0.0.1',
  directory,
  silent: true,
  configureBuckets: buckets.split(',').map((name) => ({ name })),
});
server.run().then(
  () => process.stdout.write('ready\n'),
  (err) => {
    process.stderr.write(String(err) + '\n');
    process.exit(1);
  },
);
process.on('SIGTERM', () => server.close().finally(() => process.exit(0)));
