// The shipped nginx configuration (deploy/nginx/swinq.conf) made runnable without root for a test or a
// benchmark: its upstream servers and listen port replaced, pid/logs/temp paths under a private prefix.
// Used by test/scale-out.test.ts and bench/scale-out.js.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** A free loopback TCP port (bound and released; a race with other processes is possible but rare). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

/**
 * Writes `${prefix}/nginx.conf`: the template with one `server` line per replica port and the front
 * listening on `listen`. nginx's workers drop root privileges, so the prefix is made world-writable.
 * Returns the path of the written file.
 */
export function writeNginxConf(template, { replicas, listen, prefix }) {
  const servers = replicas.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=2s;`).join('\n');
  let conf = fs.readFileSync(template, 'utf8');
  const upstream = / {4}server 127\.0\.0\.1:8001[^\n]*\n {4}server 127\.0\.0\.1:8002[^\n]*/;
  if (!upstream.test(conf) || !conf.includes('listen 127.0.0.1:8000')) throw new Error(`${template}: upstream servers 8001/8002 or 'listen 127.0.0.1:8000' not found`);
  conf = conf.replace(upstream, servers).replace('listen 127.0.0.1:8000', `listen 127.0.0.1:${listen}`);
  const temps = ['body', 'proxy', 'fcgi', 'uwsgi', 'scgi'];
  conf = `daemon off;\npid ${prefix}/nginx.pid;\nerror_log ${prefix}/error.log;\n` +
    conf.replace('http {', `http {\n  access_log off;\n  client_body_temp_path ${prefix}/body;\n  proxy_temp_path ${prefix}/proxy;\n  fastcgi_temp_path ${prefix}/fcgi;\n  uwsgi_temp_path ${prefix}/uwsgi;\n  scgi_temp_path ${prefix}/scgi;`);
  fs.chmodSync(prefix, 0o777);
  for (const d of temps) fs.mkdirSync(path.join(prefix, d), { recursive: true, mode: 0o777 });
  const file = path.join(prefix, 'nginx.conf');
  fs.writeFileSync(file, conf);
  return file;
}

/**
 * Stops an nginx master started with `daemon off`: SIGTERM (fast shutdown: it ends its workers), then
 * SIGKILL after `ms`. A SIGKILLed master leaves its workers running, bound to the port, for ever.
 */
export async function stopNginx(proc, ms = 5000) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  const timer = new Promise((resolve) => setTimeout(() => resolve('timeout'), ms));
  if ((await Promise.race([exited, timer])) === 'timeout') proc.kill('SIGKILL');
}
