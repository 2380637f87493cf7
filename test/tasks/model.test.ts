import { createServer, type Server } from 'node:http';
import { copyFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import modelTask, { materializeModel, modelInputs, modelOptions, modelSummaryLines, placeFile, type ModelRecord } from '../../tasks/model.js';
import { RocmflowError } from '../../src/errors.js';
import { planModel } from '../../src/gguf/model-source.js';
import { writeTinyModel } from '../../src/gguf/tiny-model.js';
import type { Progress } from '../../src/plugin/index.js';
import { vocabFile } from '../helpers/llama.js';

let tmp: string;
let vocab: string;
let tiny: { path: string; sha256: string; bytes: number };
let server: Server;
let base: string;
let requests = 0;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'rocmflow-model-task-'));
  vocab = await vocabFile('ggml-vocab-llama-spm.gguf');
  tiny = await writeTinyModel({ vocab, out: join(tmp, 'tiny.gguf'), seed: 7 });
  server = createServer((req, res) => {
    requests++;
    if (req.url === '/tiny.gguf') {
      const body = readFileSync(tiny.path);
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    } else {
      res.writeHead(404);
      res.end('not here');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(tmp, { recursive: true, force: true });
});

const where = () => ({ projectRoot: tmp, modelsDir: null });
const fresh = (name: string) => {
  const d = join(tmp, name);
  mkdirSync(d, { recursive: true });
  return d;
};
/** A Progress that records what it was told. */
function recorder() {
  const events: Array<{ label: string; done: number; total?: number; finished: boolean }> = [];
  const progress: Progress = {
    start(label, opts) {
      const e = { label, done: 0, total: opts?.total, finished: false };
      events.push(e);
      return { update: (d, t) => ((e.done = d), t !== undefined && (e.total = t)), done: () => (e.finished = true) };
    },
  };
  return { events, progress };
}
const rejects = async (p: Promise<unknown>, code: string, re: RegExp) => {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(RocmflowError);
  expect((e as RocmflowError).code).toBe(code);
  expect((e as RocmflowError).message).toMatch(re);
};

describe('model options', () => {
  it('accepts each source form and names the key path of mistakes', () => {
    const parse = (v: unknown) => modelOptions.parse(v, 'tasks.model');
    expect(parse({ source: 'models/a.gguf' })).toEqual({ source: 'models/a.gguf', vocab: { npm: 'node-llama-cpp@3.22.1' } });
    expect(parse({ source: { url: 'https://x.test/m.gguf', sha256: 'A'.repeat(64) } }).source).toEqual({ url: 'https://x.test/m.gguf', sha256: 'A'.repeat(64) });
    expect(parse({ source: { tiny: { seed: 3, layers: 1 } }, vocab: 'v.gguf' })).toEqual({ source: { tiny: { seed: 3, layers: 1 } }, vocab: 'v.gguf' });
    expect(parse(undefined)).toEqual({ vocab: { npm: 'node-llama-cpp@3.22.1' } });
    expect(() => parse({ source: { url: 'https://x.test/m.gguf', sha256: 'abc' } })).toThrow('tasks.model.source.sha256: expected a sha256 (64 hex digits)');
    expect(() => parse({ source: { url: 'ftp://x/m.gguf', sha256: 'a'.repeat(64) } })).toThrow('tasks.model.source.url: expected an http:// or https:// URL');
    expect(() => parse({ source: { tiny: { layer: 2 } } })).toThrow(/tasks\.model\.source\.tiny\.layer: unknown key \(did you mean "layers"\?\)/);
    expect(() => parse({ source: { tiny: { embd: 0 } } })).toThrow(/tasks\.model\.source\.tiny\.embd: expected a number >= 1/);
    expect(() => parse({ source: 42 })).toThrow(/tasks\.model\.source: expected a path/);
    expect(() => parse({ sorce: 'x' })).toThrow(/tasks\.model\.sorce: unknown key \(did you mean "source"\?\)/);
  });

  it('the task declares its outputs and the inputs of its plan', async () => {
    expect(modelTask.name).toBe('model');
    expect(modelTask.outputs).toEqual(['model.gguf', 'model.json']);
    const plan = await planModel({ source: tiny.path }, where());
    expect(modelInputs(plan)).toEqual({ files: [tiny.path], params: { kind: 'file', path: tiny.path } });
    const t = await planModel({ vocab }, where());
    expect(modelInputs(t)).toEqual({ files: [vocab], params: { kind: 'tiny', seed: 1, layers: 2, embd: 64, heads: 4, ff: 128, contextLength: 512, weightType: 'Q8_0' } });
  });
});

describe('planModel', () => {
  it('a file, relative to the project root', async () => {
    expect(await planModel({ source: 'tiny.gguf' }, where())).toEqual({ kind: 'file', path: tiny.path });
    await rejects(planModel({ source: 'missing.gguf' }, where()), 'E_MODEL_SOURCE', /tasks\.model\.source: .*missing\.gguf does not exist/);
  });

  it('a directory: the only *.gguf, or the one named; several without a name list them', async () => {
    const one = fresh('one');
    copyFileSync(tiny.path, join(one, 'only.gguf'));
    writeFileSync(join(one, 'notes.txt'), 'x');
    expect(await planModel({ source: 'one' }, where())).toEqual({ kind: 'file', path: join(one, 'only.gguf'), dir: one });

    const many = fresh('many');
    for (const n of ['gemma-3-1b-it-Q4_K_M.gguf', 'qwen3-4b-Q8_0.gguf', 'llama-3.2-1b.gguf']) copyFileSync(tiny.path, join(many, n));
    await rejects(planModel({ source: 'many' }, where()), 'E_MODEL_SOURCE', /3 models in .*many \(gemma-3-1b-it-Q4_K_M\.gguf, llama-3\.2-1b\.gguf, qwen3-4b-Q8_0\.gguf\); set tasks\.model\.name/);
    expect(await planModel({ source: 'many', name: 'qwen3-4b-Q8_0' }, where())).toMatchObject({ path: join(many, 'qwen3-4b-Q8_0.gguf') });
    expect(await planModel({ source: 'many', name: 'llama-3.2-1b.gguf' }, where())).toMatchObject({ path: join(many, 'llama-3.2-1b.gguf') });
    await rejects(planModel({ source: 'many', name: 'qwen3-4b-Q8' }, where()), 'E_MODEL_SOURCE', /no model "qwen3-4b-Q8" .*did you mean "qwen3-4b-Q8_0"/);
    await rejects(planModel({ source: fresh('empty') }, where()), 'E_MODEL_SOURCE', /no \*\.gguf files in .*empty/);
  });

  it('a name without a source picks from modelsDir; nothing configured means the tiny model, which needs a vocab', async () => {
    expect(await planModel({ name: 'only' }, { projectRoot: tmp, modelsDir: 'one' })).toMatchObject({ kind: 'file', path: join(tmp, 'one', 'only.gguf') });
    expect(await planModel({ vocab }, where())).toMatchObject({ kind: 'tiny', vocab, params: { seed: 1 } });
    expect(await planModel({ source: { tiny: { vocab, seed: 9 } } }, where())).toMatchObject({ kind: 'tiny', params: { seed: 9 } });
    await rejects(planModel({}, where()), 'E_MODEL_SOURCE', /tasks\.model\.vocab: required to generate the tiny model/);
    await rejects(planModel({ vocab, source: { tiny: { embd: 64, heads: 3 } } }, where()), 'E_TINY_MODEL', /heads/);
  });
});

describe('materializeModel', () => {
  it('a local file: placed without touching the original, hashed with progress, described', async () => {
    const user = join(fresh('user'), 'mine.gguf');
    copyFileSync(tiny.path, user);
    chmodSync(user, 0o640);
    const before = statSync(user);
    const out = fresh('out-file');
    const { events, progress } = recorder();
    const rec = await materializeModel(await planModel({ source: user }, where()), out, { progress, cacheDir: join(tmp, 'cache') });

    expect(rec.sha256).toBe(tiny.sha256);
    expect(rec.size).toBe(tiny.bytes);
    expect(['reflink', 'hardlink', 'copy']).toContain(rec.placed);
    expect(rec.summary).toMatchObject({ architecture: 'llama', layers: 2, vocabSize: 32000, quantization: 'Q8_0' });
    expect(readFileSync(join(out, 'model.gguf')).equals(readFileSync(tiny.path))).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(rec)));
    const after = statSync(user);
    expect([after.mode, after.mtimeMs, after.size]).toEqual([before.mode, before.mtimeMs, before.size]);
    expect(events).toEqual([{ label: 'hashing model', done: tiny.bytes, total: tiny.bytes, finished: true }]);
    expect(modelSummaryLines(rec)[0]).toMatch(/^model: llama 4\.2M params, Q8_0, 4\.9 MiB \(.*mine\.gguf, (reflink|hardlink|copy)\)$/);
  });

  it('a local file that is not GGUF fails under its own name', async () => {
    const junk = join(fresh('junk'), 'junk.gguf');
    writeFileSync(junk, 'this is not a model at all');
    const out = fresh('out-junk');
    await rejects(materializeModel({ kind: 'file', path: junk }, out, { cacheDir: tmp }), 'E_GGUF', new RegExp(`${junk}: not a GGUF file`));
    expect(existsSync(join(out, 'model.json'))).toBe(false);
  });

  it('a URL: streamed from a local server, verified, kept in the download cache', async () => {
    const cacheDir = join(tmp, 'cache-url');
    const out = fresh('out-url');
    const { events, progress } = recorder();
    const plan = await planModel({ source: { url: `${base}/tiny.gguf`, sha256: tiny.sha256.toUpperCase() } }, where());
    const rec = await materializeModel(plan, out, { progress, cacheDir });
    expect(rec).toMatchObject({ source: { kind: 'url', url: `${base}/tiny.gguf` }, sha256: tiny.sha256, size: tiny.bytes });
    expect(createHash('sha256').update(readFileSync(join(out, 'model.gguf'))).digest('hex')).toBe(tiny.sha256);
    expect(existsSync(join(cacheDir, 'downloads', 'models', `${tiny.sha256}.gguf`))).toBe(true);
    expect(events[0]).toMatchObject({ label: `downloading ${base}/tiny.gguf`, done: tiny.bytes, total: tiny.bytes, finished: true });

    // a second run finds the verified download and does not ask the server again
    const n = requests;
    await materializeModel(plan, fresh('out-url-2'), { cacheDir });
    expect(requests).toBe(n);
  });

  it('a URL with the wrong sha256 or a missing file is refused and nothing counts', async () => {
    const cacheDir = join(tmp, 'cache-bad');
    const out = fresh('out-bad');
    const wrong = 'ab'.repeat(32);
    await rejects(materializeModel({ kind: 'url', url: `${base}/tiny.gguf`, sha256: wrong }, out, { cacheDir }), 'E_CHECKSUM', /checksum mismatch .*expected sha256 abab/);
    expect(existsSync(join(out, 'model.gguf'))).toBe(false);
    expect(existsSync(join(cacheDir, 'downloads', 'models', `${wrong}.gguf`))).toBe(false);
    await rejects(materializeModel({ kind: 'url', url: `${base}/gone.gguf`, sha256: wrong }, out, { cacheDir }), 'E_HTTP', /HTTP 404/);
  });

  it('the tiny model: generated into the output with the vocab recorded', async () => {
    const out = fresh('out-tiny');
    const rec: ModelRecord = await materializeModel(await planModel({ vocab, source: { tiny: { seed: 7 } } }, where()), out, { cacheDir: tmp });
    expect(rec.placed).toBe('generated');
    expect(rec.sha256).toBe(tiny.sha256); // same seed and sizes as the file made in beforeAll
    expect(rec.source).toMatchObject({ kind: 'tiny', vocab: basename(vocab), vocabSha256: createHash('sha256').update(readFileSync(vocab)).digest('hex') });
  });
});

describe('placeFile', () => {
  it('places a file by reflink, hardlink or copy and replaces an existing destination', async () => {
    const d = fresh('place');
    writeFileSync(join(d, 'src'), 'model bytes');
    const how = await placeFile(join(d, 'src'), join(d, 'dst'));
    expect(['reflink', 'hardlink', 'copy']).toContain(how);
    expect(readFileSync(join(d, 'dst'), 'utf8')).toBe('model bytes');
    await placeFile(join(d, 'src'), join(d, 'dst')); // an existing destination is replaced
    expect(readFileSync(join(d, 'src'), 'utf8')).toBe('model bytes');
  });
});
