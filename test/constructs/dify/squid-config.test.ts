import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DENIED_DESTINATIONS, squidConfig } from '../../../lib/constructs/dify/squid-config';
import { LOG_SIGNALS, logSignalPattern } from '../../../contracts/log-signals';
import { matchesFilterPattern } from '../../helpers/filter-pattern';
import { freeLoopbackPort } from '../../helpers/free-port';
import { SQUID } from '../../helpers/squid';

const squid = SQUID;

describe('the SSRF proxy configuration', () => {
  const config = squidConfig({ vpcCidr: '10.0.0.0/16', port: 3128, runDirectory: '/var/run/squid' });
  const lines = config.split('\n');
  const index = (line: string) => lines.indexOf(line);

  it('denies the metadata endpoints, link-local, loopback, private ranges and the VPC before anything is allowed', () => {
    const allow = index('http_access allow dify_clients');
    expect(allow).toBeGreaterThan(0);
    for (const acl of ['to_metadata', 'to_link_local', 'to_loopback', 'to_private', 'to_vpc']) {
      const deny = index(`http_access deny ${acl}`);
      expect({ acl, before: deny >= 0 && deny < allow }).toEqual({ acl, before: true });
    }
    expect(config).toContain('169.254.169.254/32');
    expect(config).toContain('169.254.170.2/32');
    expect(lines.at(-2) ?? '').not.toMatch(/^http_access allow/);
    expect(index('http_access deny all')).toBe(allow + 1);
  });

  it('allows only ports 80 and 443, and CONNECT only to 443', () => {
    expect(config).toContain('acl safe_ports port 80 443');
    expect(index('http_access deny !safe_ports')).toBeLessThan(index('http_access allow dify_clients'));
    expect(index('http_access deny CONNECT !tls_ports')).toBeLessThan(index('http_access allow dify_clients'));
  });

  it('caches nothing and writes only to its run directory and stdout', () => {
    expect(config).toContain('cache deny all');
    expect(config).toContain('access_log stdio:/dev/stdout');
    expect(config).toContain('pid_filename /var/run/squid/squid.pid');
    expect(config).not.toMatch(/^cache_dir /m);
  });

  describe('with a real squid on loopback', () => {
    if (squid === undefined) {
      it('needs squid (apt-get install -y squid; .ci/run installs it)', () => {
        throw new Error('squid is not installed: this suite would prove nothing without it');
      });
      return;
    }
    let dir: string;
    let proxy: ChildProcess;
    let origin: Server;
    let proxyPort: number;
    /** Where squid writes its stdout: its access log, as CloudWatch receives it from the container. */
    let accessLogPath: string;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'squid-'));
      origin = createServer((_req, res) => res.end('origin reached')).listen(0, '127.0.0.1');
      await new Promise((resolve) => origin.once('listening', resolve));
      proxyPort = await freeLoopbackPort();
      // Clients come from loopback here, as they come from the VPC in AWS.
      const conf = squidConfig({ vpcCidr: '127.0.0.0/8', port: proxyPort, runDirectory: dir }).replace(
        `http_port ${proxyPort}`,
        `http_port 127.0.0.1:${proxyPort}`,
      );
      writeFileSync(join(dir, 'squid.conf'), conf);
      execFileSync(squid, ['-k', 'parse', '-f', join(dir, 'squid.conf')], { stdio: 'pipe' });
      // Squid opens /dev/stdout again as the `proxy` user it drops to: a file that user may write to
      // stands in for the container's log stream (a pipe of this process's user would refuse it).
      accessLogPath = join(dir, 'stdout.log');
      writeFileSync(accessLogPath, '');
      chmodSync(accessLogPath, 0o666);
      const stdout = openSync(accessLogPath, 'a');
      proxy = spawn(squid, ['-N', '-f', join(dir, 'squid.conf')], { stdio: ['ignore', stdout, 'ignore'] });
      closeSync(stdout);
      for (let attempt = 0; attempt < 50; attempt++) {
        const up = await fetchThroughProxy(`http://127.0.0.1:1/`).then(
          () => true,
          () => false,
        );
        if (up) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }, 20000);

    afterAll(async () => {
      proxy?.kill('SIGKILL');
      await new Promise((resolve) => origin?.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    });

    function fetchThroughProxy(url: string): Promise<{ status: number; body: string }> {
      return new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: proxyPort, path: url, method: 'GET', timeout: 3000 }, (res) => {
          let body = '';
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.end();
      });
    }

    it('parses as valid squid configuration', () => {
      expect(() =>
        execFileSync(squid, ['-k', 'parse', '-f', join(dir, 'squid.conf')], { stdio: 'pipe' }),
      ).not.toThrow();
    });

    it('refuses to reach a loopback origin, as it refuses metadata and private addresses', async () => {
      const port = (origin.address() as AddressInfo).port;
      const response = await fetchThroughProxy(`http://127.0.0.1:${port}/`);
      expect(response.status).toBe(403);
      expect(response.body).not.toContain('origin reached');
    });

    it('refuses a port other than 80 and 443 before looking at the destination', async () => {
      const response = await fetchThroughProxy('http://127.0.0.1:8080/');
      expect(response.status).toBe(403);
    });

    it('writes each refusal as an access line the denied-egress alarm counts, and nothing else it counts', async () => {
      const port = (origin.address() as AddressInfo).port;
      await fetchThroughProxy(`http://127.0.0.1:${port}/metadata-probe`);
      const deadline = Date.now() + 5000;
      const accessLog = () => readFileSync(accessLogPath, 'utf8');
      while (!accessLog().includes('/metadata-probe') && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const lines = accessLog()
        .split('\n')
        .filter((line) => line.trim() !== '');
      const probe = lines.find((line) => line.includes('/metadata-probe'));
      expect(probe).toBeDefined();
      const pattern = logSignalPattern(LOG_SIGNALS.deniedEgress);
      expect(matchesFilterPattern(pattern, probe!)).toBe(true);
      // Every line squid wrote here is a refusal (loopback and port 8080), and each one counts.
      expect(lines.length).toBeGreaterThanOrEqual(3);
      for (const line of lines) expect([line, matchesFilterPattern(pattern, line)]).toEqual([line, true]);
      // The same line in a served request's form does not.
      expect(matchesFilterPattern(pattern, probe!.replace(/TCP_DENIED\/403/, 'TCP_MISS/200'))).toBe(false);
    });

    it('lists every denied range in its configuration', () => {
      const all = Object.values(DENIED_DESTINATIONS).flat();
      for (const range of all) expect(config).toContain(range);
    });
  });
});
