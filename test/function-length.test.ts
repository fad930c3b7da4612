import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';
import { ROOT } from './helpers';

/** The longest a function, method or arrow function of src/ may be, in lines (its doc comment not counted). */
const LIMIT = 120;

/**
 * Functions over the limit in code that is being reworked now, each with why it is still here.
 * An entry whose function is back under the limit (or gone) fails the test: delete it then.
 */
const ALLOWED: Record<string, string> = {};

export interface FunctionSpan {
  /** `file:name`; a method is `Class.method`, a function passed as an argument `<arrow in enclosing>`. */
  key: string;
  file: string;
  name: string;
  line: number;
  lines: number;
}

/** The name a function-like node goes by: its own, its variable's or property's (`Class.name` in a class), else where it sits. */
function nameOf(node: ts.SignatureDeclaration, sf: ts.SourceFile, enclosing: string[]): string {
  const own = (n: ts.Node | undefined): string | undefined =>
    n && (ts.isIdentifier(n) || ts.isStringLiteral(n) || ts.isPrivateIdentifier(n)) ? n.text : undefined;
  const inClass = (holder: ts.Node, name: string) => (ts.isClassLike(holder) ? `${holder.name?.text ?? '<class>'}.${name}` : name);
  if (ts.isConstructorDeclaration(node)) return inClass(node.parent, 'constructor');
  const named = own(node.name);
  if (named) return inClass(node.parent, named);
  const p = node.parent;
  if (ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)) {
    const holder = own(p.name);
    if (holder) return inClass(p.parent, holder);
  }
  return `<${ts.isArrowFunction(node) ? 'arrow' : 'function'} in ${enclosing.length ? enclosing[enclosing.length - 1] : sf.fileName}>`;
}

/** Every function, method, accessor, constructor and arrow function of a source text, with its length in lines. */
export function functionSpans(file: string, text: string): FunctionSpan[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: FunctionSpan[] = [];
  const enclosing: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && (node as ts.FunctionLikeDeclaration).body) {
      const name = nameOf(node, sf, enclosing);
      const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      out.push({ key: `${file}:${name}`, file, name, line: first + 1, lines: last - first + 1 });
      enclosing.push(name);
      ts.forEachChild(node, visit);
      enclosing.pop();
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** The .ts files under `dir` (relative to ROOT), sorted. */
function sources(dir: string): string[] {
  return fs
    .readdirSync(path.join(ROOT, dir), { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory()
        ? sources(path.join(dir, e.name))
        : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')
          ? [path.join(dir, e.name).split(path.sep).join('/')]
          : [],
    )
    .sort();
}

const show = (f: FunctionSpan) => `${f.file}:${f.line} ${f.name} (${f.lines} lines)`;

test(`no function in src/ is over ${LIMIT} lines (split it into named parts), but for the allow-list`, () => {
  const spans = sources('src').flatMap((f) => functionSpans(f, fs.readFileSync(path.join(ROOT, f), 'utf8')));
  assert.ok(spans.length > 500, `${spans.length} functions`);
  const long = spans.filter((f) => f.lines > LIMIT);
  const over = long.filter((f) => !(f.key in ALLOWED));
  assert.deepEqual(over.map(show), [], `functions over ${LIMIT} lines:\n${over.map(show).join('\n')}`);
  const stale = Object.keys(ALLOWED).filter((k) => !long.some((f) => f.key === k));
  assert.deepEqual(stale, [], `allowed above but no longer over ${LIMIT} lines (or gone): delete from ALLOWED: ${stale.join(', ')}`);
});

test('a function counts from its first line to its last (not its doc comment); a nested one is listed too, named after where it sits', () => {
  const body = (n: number) => Array.from({ length: n - 2 }, (_, i) => `  const v${i} = ${i};`).join('\n');
  const text = [
    '/** doc */',
    `export function long(a: number) {\n${body(121)}\n}`,
    `const arrow = (b: number) => {\n${body(120)}\n};`,
    'class K {',
    `  method() {\n${body(5)}\n    [1].map((x) => {\n      return x;\n    });\n  }`,
    '}',
    'export const plugin = { evaluate: async () => 1 };',
  ].join('\n');
  const spans = functionSpans('x.ts', text);
  assert.deepEqual(
    spans.map((f) => [f.name, f.line, f.lines]),
    [
      ['long', 2, 121],
      ['arrow', 123, 120],
      ['K.method', 244, 8],
      ['<arrow in K.method>', 248, 3],
      ['evaluate', 253, 1],
    ],
  );
});
