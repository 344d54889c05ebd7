/**
 * A control for `pnpm bench stream`: a plaintext relay in a process of its own that forwards each
 * request to the upstream and passes the answer on piece by piece as it comes, with node:http both
 * ways (a kept-alive connection upstream) and nothing else: what one more process on the path costs
 * on this machine, without any crypto, parsing or fetch. The openai SDK reads the upstream through it.
 */
import http from 'node:http';

const target = new URL(process.argv[2]);
const agent = new http.Agent({ keepAlive: true });

const server = http.createServer({ noDelay: true }, (req, res) => {
  const { host: _host, connection: _connection, ...headers } = req.headers;
  const forward = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers, agent }, (answer) => {
    res.writeHead(answer.statusCode, answer.headers);
    res.flushHeaders();
    answer.on('data', (piece) => res.write(piece)).on('end', () => res.end());
  });
  forward.on('socket', (socket) => socket.setNoDelay(true));
  forward.on('error', () => res.destroy());
  req.pipe(forward);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${server.address().port}/v1`));
process.once('disconnect', () => process.exit(0));
