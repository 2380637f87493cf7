# Section and program headers of CUDA's libcublasLt, and per-MiB entropy and magic counts of its
# data sections. Usage: python3 probe-sections.py > OUT.txt
import struct, sys, math, glob, os, collections
cands = sorted(glob.glob('/usr/local/cuda*/targets/x86_64-linux/lib/libcublasLt.so.*.*')) + sorted(glob.glob('/usr/local/cuda*/lib64/libcublasLt.so.*.*'))
path = os.path.realpath(cands[0]); print('file', path, os.path.getsize(path))
f = open(path, 'rb'); data = f.read()
eh = data[:64]
shoff = struct.unpack_from('<Q', eh, 0x28)[0]; shentsize, shnum, shstrndx = struct.unpack_from('<HHH', eh, 0x3a)
secs = []
for i in range(shnum):
    name, typ, flags, addr, off, size, link, info, align, entsize = struct.unpack_from('<IIQQQQIIQQ', data, shoff + i * shentsize)
    secs.append(dict(i=i, nameoff=name, type=typ, flags=flags, addr=addr, off=off, size=size, link=link, entsize=entsize))
strtab = secs[shstrndx]
def cstr(buf, o):
    e = buf.index(b'\0', o); return buf[o:e].decode('latin1')
for s in secs: s['name'] = cstr(data, strtab['off'] + s['nameoff'])
for s in secs:
    if s['size'] > 100000: print('section %-22s type %2d flags %#6x addr %#12x off %#12x size %12d' % (s['name'], s['type'], s['flags'], s['addr'], s['off'], s['size']))
# program headers
phoff = struct.unpack_from('<Q', eh, 0x20)[0]; phentsize, phnum = struct.unpack_from('<HH', eh, 0x36)
for i in range(phnum):
    t, fl, off, va, pa, fs, ms, al = struct.unpack_from('<IIQQQQQQ', data, phoff + i * phentsize)
    print('phdr type %#x flags %d off %#x va %#x filesz %d memsz %d' % (t, fl, off, va, fs, ms))
def ent(b):
    if not b: return 0
    c = collections.Counter(b); n = len(b)
    return -sum(v / n * math.log2(v / n) for v in c.values())
magics = {'fatbin': b'\x50\xed\x55\xba', 'elf': b'\x7fELF', 'zstd': b'\x28\xb5\x2f\xfd', 'lz4': b'\x04\x22\x4d\x18', 'xz': b'\xfd7zXZ', 'gzip': b'\x1f\x8b\x08', 'fatbinhdr2': b'\xa1\x1e\xb0\x466'}
for name in ('.ldata', '.lrodata', '.rodata', '.cask_resource', '.data', '.data.rel.ro', '.nv_fatbin', '.nvFatBinSegment'):
    ss = [s for s in secs if s['name'] == name]
    if not ss: continue
    s = ss[0]; b = data[s['off']:s['off'] + s['size']] if s['type'] != 8 else b''
    if not b: print(name, 'nobits', s['size']); continue
    mib = 1 << 20
    es = [ent(b[i:i + mib]) for i in range(0, len(b), mib)]
    zs = [b[i:i + mib].count(0) / len(b[i:i + mib]) for i in range(0, len(b), mib)]
    print(f'== {name} size {len(b)} entropy/MiB min {min(es):.2f} med {sorted(es)[len(es)//2]:.2f} max {max(es):.2f}; zero frac med {sorted(zs)[len(zs)//2]:.2f}')
    print('   entropy per MiB:', ' '.join('%.1f' % e for e in es[:200]))
    for m, mb in magics.items():
        cnt = 0; pos = b.find(mb); first = []
        while pos >= 0:
            cnt += 1
            if len(first) < 5: first.append(pos)
            pos = b.find(mb, pos + 1)
        print(f'   magic {m}: {cnt} first at {first}')
    for at in (0, len(b) // 3, len(b) // 2, 2 * len(b) // 3):
        print(f'   hex @{at}:', b[at:at + 64].hex())
    strs = collections.Counter()
    import re
    for mm in re.finditer(rb'[\x20-\x7e]{12,}', b[:min(len(b), 200 * mib)]):
        strs[mm.group()[:60]] += 1
    print('   strings:', len(strs), 'top:', [k.decode() for k, _ in strs.most_common(25)])
# symbols into .ldata
for symsec in [s for s in secs if s['type'] in (2, 11)]:
    st = secs[symsec['link']]
    bysec = collections.defaultdict(list)
    for i in range(symsec['size'] // 24):
        nm, info, other, shndx, val, sz = struct.unpack_from('<IBBHQQ', data, symsec['off'] + i * 24)
        if 0 < shndx < len(secs): bysec[secs[shndx]['name']].append((sz, cstr(data, st['off'] + nm), val))
    for name in ('.ldata', '.lrodata', '.rodata', '.data.rel.ro', '.cask_resource', '.lbss'):
        l = sorted(bysec.get(name, []), reverse=True)
        if l: print(f'{symsec["name"]} syms in {name}: {len(l)} total {sum(x[0] for x in l)}; top:', [(x[1][:80], x[0]) for x in l[:30]])
# relocations pointing into .ldata: count by source section
ld = [s for s in secs if s['name'] == '.ldata']
if ld:
    lo, hi = ld[0]['addr'], ld[0]['addr'] + ld[0]['size']
    for rs in [s for s in secs if s['type'] == 4]:
        n = 0; tgt = collections.Counter(); srcs = collections.Counter()
        for i in range(rs['size'] // 24):
            off, info, add = struct.unpack_from('<QQq', data, rs['off'] + i * 24)
            if lo <= add < hi:
                n += 1
                for s in secs:
                    if s['addr'] <= off < s['addr'] + s['size'] and s['addr']: srcs[s['name']] += 1; break
        print(f'{rs["name"]}: {rs["size"]//24} relocs, {n} with addend into .ldata; from sections {srcs.most_common(8)}')
