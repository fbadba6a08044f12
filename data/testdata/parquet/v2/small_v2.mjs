// Writes a small DATA_PAGE_V2 file with hyparquet-writer (700 rows of pretrain_hyparquet's text,
// every 7th NULL, plus a dictionary-encoded source column), checks it with DuckDB and hyparquet,
// and writes its manifest.json (same stats as gen.mjs's colStats).
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
const HERE = path.dirname(new URL(import.meta.url).pathname);
const OUT = process.argv[2];
const req = createRequire(path.join(HERE, 'node', 'package.json'));
const esm = async (name) => import(pathToFileURL(req.resolve(name)).href);
const { DuckDBInstance } = req('@duckdb/node-api');
const { parquetWriteBuffer } = await esm('hyparquet-writer');
const { parquetReadObjects, asyncBufferFromFile } = await esm('hyparquet');
const { compressors } = await esm('hyparquet-compressors');

const src = await parquetReadObjects({ file: await asyncBufferFromFile(path.join(HERE, 'pretrain_hyparquet.parquet')), compressors });
const rows = src.slice(0, 700).map((r, i) => ({ text: i % 7 === 3 ? null : r.text, source: ['docs', 'code', 'man'][i % 3] }));
const buf = parquetWriteBuffer({ columnData: [
  { name: 'text', data: rows.map((r) => r.text), type: 'STRING' },
  { name: 'source', data: rows.map((r) => r.source), type: 'STRING' },
], rowGroupSize: 250, pageSize: 65536 });
const file = path.join(OUT, 'pretrain_hyparquet_v2_small.parquet');
fs.writeFileSync(file, Buffer.from(buf));

const inst = await DuckDBInstance.create(':memory:');
const con = await inst.connect();
const duck = (await con.runAndReadAll(`SELECT text, source FROM read_parquet('${file}')`)).getRowObjectsJS();
const hy = await parquetReadObjects({ file: await asyncBufferFromFile(file), compressors });
const same = (a) => a.length === rows.length && a.every((x, i) => x.text === rows[i].text && x.source === rows[i].source);
if (!same(duck) || !same(hy)) throw new Error(`verify failed: duckdb=${same(duck)} hyparquet=${same(hy)}`);
const meta = (await con.runAndReadAll(`SELECT row_group_id, row_group_num_rows, path_in_schema, encodings FROM parquet_metadata('${file}')`)).getRowObjectsJS();

function colStats(vals) {
  const hc = crypto.createHash('sha256'), hf = crypto.createHash('sha256');
  let bytes = 0, chars = 0, nulls = 0, empty = 0;
  for (const v of vals) {
    const len = Buffer.alloc(8);
    if (v === null) { nulls++; len.fill(0xff); hf.update(len); continue; }
    const b = Buffer.from(v, 'utf8');
    len.writeBigUInt64LE(BigInt(b.length));
    hf.update(len).update(b); hc.update(b);
    bytes += b.length; chars += Array.from(v).length; if (v === '') empty++;
  }
  return { nulls, kind: 'string', empty, utf8_bytes: bytes, code_points: chars, sha256_concat: hc.digest('hex'), sha256_framed: hf.digest('hex') };
}
const rgRows = [...new Map(meta.map((m) => [m.row_group_id, Number(m.row_group_num_rows)])).values()];
const manifest = { generated_by: 'small_v2.mjs (see data/testdata/parquet/v2/README.md)', files: [{
  file: path.basename(file), bytes: buf.byteLength, sha256: crypto.createHash('sha256').update(Buffer.from(buf)).digest('hex'),
  writer: 'hyparquet-writer (pure JavaScript), DATA_PAGE_V2, SNAPPY; text PLAIN with NULLs, source RLE_DICTIONARY',
  rows: rows.length, row_group_rows: rgRows, encodings: meta.map((m) => `${m.row_group_id}:${m.path_in_schema}:${m.encodings}`),
  column_stats: { text: colStats(rows.map((r) => r.text)), source: colStats(rows.map((r) => r.source)) },
  verified: { duckdb: true, hyparquet: true } }] };
fs.writeFileSync(path.join(OUT, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
console.log(JSON.stringify(manifest.files[0], null, 1));
