/**
 * The nginx server block in docs/remote-cache.md, started as written (paths
 * and port swapped for temp ones): anyone reads, only CI writes.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';
import { bodiesRun, counterFile, eventsOf, outcome, pipelineWorkspace, runPipeline, sharedTasks } from './fixture.js';
import { startNginx, type Nginx } from './nginx.js';

function documentedServerBlock(): string {
  const md = readFileSync(join(REPO, 'docs/remote-cache.md'), 'utf8');
  const m = /```nginx\n([\s\S]*?)```/.exec(md);
  if (!m) throw new Error('docs/remote-cache.md has no nginx block');
  return m[1]!;
}

describe('the documented nginx setup', () => {
  let n: Nginx;
  afterAll(async () => n?.stop());

  it('lets laptops read, CI write with basic auth, and refuses anonymous uploads with one warning', async () => {
    const block = documentedServerBlock();
    expect(block).toContain('listen 8080;');
    let htpasswd = '';
    n = await startNginx({
      server: ({ port, dir, root }) => {
        htpasswd = join(dir, 'ci.htpasswd');
        const hash = execFileSync('openssl', ['passwd', '-apr1', 'ci-password'], { encoding: 'utf8' }).trim();
        writeFileSync(htpasswd, `ci:${hash}\n`, { mode: 0o644 });
        for (const d of ['rocmflow', '.uploads']) {
          mkdirSync(join(root, d), { recursive: true });
          chmodSync(join(root, d), 0o777);
        }
        return block
          .replace('listen 8080;', `listen 127.0.0.1:${port};`)
          .replaceAll('/srv/rocmflow-cache', root)
          .replace('/etc/nginx/rocmflow-ci.htpasswd', htpasswd);
      },
    });
    const url = `http://127.0.0.1:${n.port}/rocmflow`;
    const acDir = join(n.root, 'rocmflow/ac');
    const counter = counterFile();
    const tasks = sharedTasks({ counter });

    // a laptop wrongly set to read-write: uploads refused, one warning, the run succeeds
    const laptop = pipelineWorkspace({ tasks, remote: { url, mode: 'read-write' } });
    const rl = runPipeline(laptop);
    expect(rl.code, rl.stderr).toBe(0);
    const warnings = eventsOf(rl, 'warning');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].message).toMatch(/refused access: PUT .*HTTP 401 Unauthorized; not uploading results in this run/);
    expect(existsSync(acDir)).toBe(false);

    // CI: mode auto + CI=true, credentials from the environment
    const ci = pipelineWorkspace({ tasks, remote: { url, mode: 'auto' } });
    const rc = runPipeline(ci, { CI: 'true', ROCMFLOW_REMOTE_CACHE_USER: 'ci', ROCMFLOW_REMOTE_CACHE_PASSWORD: 'ci-password' });
    expect(rc.code, rc.stderr).toBe(0);
    expect(eventsOf(rc, 'warning')).toEqual([]);
    expect(readdirSync(acDir)).toHaveLength(4);

    // another laptop (mode auto, no CI) reads everything anonymously
    const before = bodiesRun(counter).length;
    const reader = pipelineWorkspace({ tasks, remote: { url, mode: 'auto' } });
    const rr = runPipeline(reader, { CI: '' });
    expect(rr.code, rr.stderr).toBe(0);
    expect(outcome(rr)).toEqual({ gen: 'cached/remote', big: 'cached/remote', sum: 'cached/remote', same: 'cached/remote' });
    expect(bodiesRun(counter)).toHaveLength(before);

    // nothing outside the cache location is served
    expect((await fetch(`http://127.0.0.1:${n.port}/.uploads/`)).status).toBe(404);
  });
});
