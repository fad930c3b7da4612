import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT } from './helpers';

/**
 * The documentation's cross references resolve: a markdown link's file exists and its #anchor
 * is a heading there (GitHub's slugs), and a reference written as `docs/NAME.md, "Title"` or
 * `README, "Title"` names a heading or a bold lead-in of that page. The README is a front page
 * whose reference moved to docs/: these keep the moves from leaving a dangling pointer behind.
 */

function walk(dir: string, keep: (f: string) => boolean): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(rel, keep));
    else if (keep(rel)) out.push(rel);
  }
  return out;
}

/** The checkout's documents and the sources whose comments point into them. */
function documents(): string[] {
  const top = fs.readdirSync(ROOT).filter((f) => f.endsWith('.md'));
  const docs = walk('docs', (f) => f.endsWith('.md'));
  const code = ['src', 'configs', 'plugins'].flatMap((d) => walk(d, (f) => /\.(ts|ya?ml|js|py|sh|txt)$/.test(f)));
  return [...top, ...docs, ...code, 'runs/README.md'].filter((f) => fs.existsSync(path.join(ROOT, f)));
}

/** A document's text, read once for all the checks. */
const texts = new Map<string, string>();
function textOf(file: string): string {
  let t = texts.get(file);
  if (t === undefined) texts.set(file, (t = fs.readFileSync(path.join(ROOT, file), 'utf8')));
  return t;
}

/** GitHub's heading anchor: lower case, markup dropped, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .replace(/`|\*\*|\*|_(?=\w)/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

const outline = new Map<string, { anchors: Set<string>; titles: string[] }>();
function outlineOf(file: string): { anchors: Set<string>; titles: string[] } {
  const hit = outline.get(file);
  if (hit) return hit;
  const seen = new Map<string, number>();
  const titles: string[] = [];
  let fence = false;
  for (const line of textOf(file).split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) {
      fence = !fence;
      continue;
    }
    if (fence) continue;
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (h) {
      const s = slug(h[1]);
      const n = seen.get(s) ?? 0;
      seen.set(s, n + 1);
      if (n) seen.set(`${s}-${n}`, 1);
      titles.push(h[1].replace(/`/g, ''));
    }
    for (const b of line.matchAll(/\*\*([^*]+)\*\*/g)) titles.push(b[1].replace(/`/g, ''));
  }
  const o = { anchors: new Set(seen.keys()), titles };
  outline.set(file, o);
  return o;
}

/** What is wrong with `target` as written in `from` (a path relative to it, maybe with #anchor), or null. */
function broken(from: string, target: string): string | null {
  const [file, anchor] = target.split('#', 2);
  const full = file ? path.normalize(path.join(path.dirname(from), file)) : from;
  if (!fs.existsSync(path.join(ROOT, full))) return `no file ${full}`;
  if (!anchor) return null;
  if (!full.endsWith('.md')) return `an anchor on ${full}, which is not markdown`;
  return outlineOf(full).anchors.has(anchor) ? null : `no heading #${anchor} in ${full}`;
}

const lineOf = (text: string, at: number) => text.slice(0, at).split('\n').length;

test('every markdown link in the docs, and every docs/NAME.md#anchor in the code, resolves to a file and a heading', () => {
  const problems: string[] = [];
  let links = 0;
  for (const f of documents()) {
    const text = textOf(f);
    const md = f.endsWith('.md');
    // code blocks in markdown are examples, not links (kept line for line)
    const scan = md ? text.replace(/^(```|~~~)[\s\S]*?^(```|~~~)/gm, (m) => '\n'.repeat(m.split('\n').length - 1)) : text;
    for (const m of scan.matchAll(/!?\[[^\]\n]*\]\(([^)\s]+)\)/g)) {
      const target = m[1];
      if (/^[a-z]+:/.test(target)) continue; // a URL
      if (!md && !/\.md(#|$)|^#/.test(target)) continue; // code that merely looks like a link
      if (target === 'docs/models.md#section') continue; // docs/models.md's own example of the form
      links++;
      const why = broken(f, target);
      if (why) problems.push(`${f}:${lineOf(scan, m.index!)}: ${target}: ${why}`);
    }
    for (const m of text.matchAll(/(?<![(\w/])(docs\/[a-z-]+\.md)#([a-z0-9_-]+)/g)) {
      if (m[2] === 'section') continue;
      links++;
      const why = broken('.', `${m[1]}#${m[2]}`);
      if (why) problems.push(`${f}:${lineOf(text, m.index!)}: ${m[0]}: ${why}`);
    }
  }
  assert.ok(links > 50, `only ${links} links found: the scan missed the docs`);
  assert.deepEqual(problems, []);
});

test('a reference written as README, "Title" or docs/NAME.md, "Title" names a heading or a bold lead-in there', () => {
  const norm = (s: string) =>
    s
      .toLowerCase()
      .replace(/[^\p{L}\p{N} ]/gu, ' ')
      .split(/\s+/)
      .filter((w) => w && w !== 'the')
      .join(' ');
  const problems: string[] = [];
  let refs = 0;
  for (const f of documents()) {
    // lines joined, comment markers dropped: a reference may wrap
    const flat = textOf(f).replace(/\s*\n\s*(?:#\s*|\/\/\s*|\*\s*)?/g, ' ');
    for (const m of flat.matchAll(/(README(?:\.md)?|docs\/[a-z-]+\.md),? "([^"]{2,100})"/g)) {
      if (m[1].startsWith('README') && flat.slice(Math.max(0, m.index! - 60), m.index).includes('clementchadebec')) continue; // another project's
      refs++;
      const file = m[1].startsWith('README') ? 'README.md' : m[1];
      if (!fs.existsSync(path.join(ROOT, file))) {
        problems.push(`${f}: ${m[0]}: no file ${file}`);
        continue;
      }
      const t = norm(m[2]);
      if (!outlineOf(file).titles.some((x) => norm(x).startsWith(t)))
        problems.push(`${f}: ${m[0]}: no such heading or bold lead-in in ${file}`);
    }
  }
  assert.ok(refs > 20, `only ${refs} references found`);
  assert.deepEqual(problems, []);
});

test('slug: GitHub-style anchors of headings with code, punctuation and non-ASCII letters', () => {
  assert.equal(slug('Devices: CPU or GPU (`device`, `--device`, `elbo env`)'), 'devices-cpu-or-gpu-device---device-elbo-env');
  assert.equal(
    slug('Model: ADGM and SDGM (auxiliary deep generative models, Maaløe et al. 2016)'),
    'model-adgm-and-sdgm-auxiliary-deep-generative-models-maaløe-et-al-2016',
  );
  assert.equal(slug('Your own data'), 'your-own-data');
});
