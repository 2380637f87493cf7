# Decompress every zstd frame in libcublasLt's .ldata and read the CUDA ELF inside; list symbols and
# relocations that point into .ldata. Usage: python3 probe-frames.py OUT.txt (ZSTD: the zstd command)
import struct, sys, glob, os, collections, subprocess, re
path = os.path.realpath(sorted(glob.glob('/usr/local/cuda*/targets/x86_64-linux/lib/libcublasLt.so.*.*'))[0])
data = open(path, 'rb').read()
shoff = struct.unpack_from('<Q', data, 0x28)[0]; shentsize, shnum, shstrndx = struct.unpack_from('<HHH', data, 0x3a)
secs = []
for i in range(shnum):
    name, typ, flags, addr, off, size, link, info, align, entsize = struct.unpack_from('<IIQQQQIIQQ', data, shoff + i * shentsize)
    secs.append(dict(nameoff=name, type=typ, addr=addr, off=off, size=size, link=link))
def cstr(buf, o): return buf[o:buf.index(b'\0', o)].decode('latin1')
for s in secs: s['name'] = cstr(data, secs[shstrndx]['off'] + s['nameoff'])
out = open(sys.argv[1], 'w')
def p(*a): print(*a, file=out)
ld = [s for s in secs if s['name'] == '.ldata'][0]
b = data[ld['off']:ld['off'] + ld['size']]
pos = []; i = b.find(b'\x28\xb5\x2f\xfd')
while i >= 0: pos.append(i); i = b.find(b'\x28\xb5\x2f\xfd', i + 1)
p('zstd frames', len(pos), 'first at', pos[:3], 'last', pos[-1])
p('bytes before first frame: entropy region 0..', pos[0])
byarch = collections.Counter(); bykind = collections.Counter(); n = 0
for k, at in enumerate(pos):
    nxt = pos[k + 1] if k + 1 < len(pos) else len(b)
    r = subprocess.run([os.environ.get('ZSTD', 'zstd'), '-dc'], input=b[at:nxt], capture_output=True)
    o = r.stdout
    archs = sorted(set(re.findall(rb'-arch (sm_\d+[af]?|compute_\d+)', o[:1 << 20])))
    kind = 'fatbin' if o[:4] == b'\x50\xed\x55\xba' else 'elf' if o[:4] == b'\x7fELF' else o[:8].hex()
    if kind == 'fatbin':
        # entries
        hs = struct.unpack_from('<H', o, 6)[0]; q = hs; ents = []
        while q + 64 <= len(o):
            kd, ver, ehs, sz = struct.unpack_from('<HHIQ', o, q)
            if kd == 0: break
            arch = struct.unpack_from('<I', o, q + 0x1c)[0]; fl = struct.unpack_from('<Q', o, q + 0x28)[0]
            ents.append(('PTX' if kd == 1 else 'ELF') + '_' + str(arch) + ('a' if fl & 0x100000 else 'f' if fl & 0x200000 else ''))
            q += ehs + sz
        archs = ents
    if kind == 'elf':
        em, = struct.unpack_from('<H', o, 18); ef, = struct.unpack_from('<I', o, 48); abi = o[7]; abiv = o[8]
        kind = f'elf(machine {em} abi {abi}/{abiv} flags {ef:#x})'
    key = ','.join(sorted(set(x.decode() if isinstance(x, bytes) else x for x in archs))) or '?'
    byarch[key] += nxt - at; bykind[kind.split('(')[0]] += 1; n += len(o)
    if k < 12 or k % 40 == 0:
        p(f'frame {k} @{at} len {nxt-at} -> {len(o)} rc {r.returncode} kind {kind} archs {key} pre {b[max(0,at-48):at].hex()}')
p('total decompressed', n)
p('compressed bytes by arch set:', byarch.most_common())
p('kinds:', bykind.most_common())
p('head of .ldata before first frame (hex 0..256):', b[:256].hex())
p('region between frames 0 and 1 tail 128:', b[pos[1]-128:pos[1]].hex())
# symbols pointing into .ldata / .lbss
for symsec in [s for s in secs if s['type'] in (2, 11)]:
    st = secs[symsec['link']]; bysec = collections.defaultdict(list)
    for i in range(symsec['size'] // 24):
        nm, info, other, shndx, val, sz = struct.unpack_from('<IBBHQQ', data, symsec['off'] + i * 24)
        if 0 < shndx < len(secs): bysec[secs[shndx]['name']].append((sz, cstr(data, st['off'] + nm)[:90], val))
    for name in ('.ldata', '.lrodata', '.lbss'):
        l = sorted(bysec.get(name, []), reverse=True)
        p(f'{symsec["name"]} syms in {name}: {len(l)} total {sum(x[0] for x in l)}; top:', [(x[1], x[0], hex(x[2])) for x in l[:25]])
lo, hi = ld['addr'], ld['addr'] + ld['size']
for rs in [s for s in secs if s['type'] == 4]:
    n = 0; srcs = collections.Counter(); tg = []
    for i in range(rs['size'] // 24):
        off, info, add = struct.unpack_from('<QQq', data, rs['off'] + i * 24)
        if lo <= add < hi:
            n += 1; tg.append(add - lo)
            for s in secs:
                if s['addr'] and s['addr'] <= off < s['addr'] + s['size']: srcs[s['name']] += 1; break
    tg.sort()
    p(f'{rs["name"]}: {rs["size"]//24} relocs, {n} with addend into .ldata; from {srcs.most_common(8)}; targets first {tg[:10]} hits at frame starts {len(set(tg) & set(pos))} at frame-16 {len(set(t+16 for t in tg) & set(pos))}')
    near = collections.Counter()
    ps = set(pos)
    for t in tg:
        for d in range(0, 257, 8):
            if t + d in ps: near[d] += 1; break
    p('   reloc target distance to next frame start:', near.most_common(10))
out.close()
