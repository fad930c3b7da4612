import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';
import { BUILTIN_PLUGINS } from '../src/builtins';
import { ROOT } from './helpers';

/**
 * The naming rule for plugin constants: `<name><Kind>Plugin`, the registered name in camelCase
 * (`spike-slab` → `spikeSlab`), then the kind capitalised, then `Plugin`: `mnistDatasetPlugin`,
 * `mlpNetworkPlugin`, `vaeModelPlugin`, `iwaeModelPlugin` next to `iwaeEvaluatorPlugin`.
 */
export function expectedConstName(plugin: { name: string; kind: string }): string {
  const camel = plugin.name.replace(/[-_.]+([a-z0-9])/gi, (_, c: string) => c.toUpperCase());
  return `${camel}${plugin.kind[0].toUpperCase()}${plugin.kind.slice(1)}Plugin`;
}

/** The identifiers listed in src/builtins.ts's BUILTIN_PLUGINS array, in order. */
function listedNames(): string[] {
  const file = path.join(ROOT, 'src/builtins.ts');
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  let names: string[] | undefined;
  const visit = (node: ts.Node) => {
    if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.name.text === 'BUILTIN_PLUGINS') {
      const init = node.initializer;
      assert.ok(init && ts.isArrayLiteralExpression(init), 'BUILTIN_PLUGINS is an array literal');
      names = init.elements.map((e) => {
        assert.ok(ts.isIdentifier(e), `BUILTIN_PLUGINS lists constants, not ${e.getText(sf)}`);
        return e.text;
      });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  assert.ok(names, 'src/builtins.ts declares BUILTIN_PLUGINS');
  return names;
}

test('every built-in plugin constant is named <name><Kind>Plugin after its registered name and kind (src/builtins.ts)', () => {
  const names = listedNames();
  assert.equal(names.length, BUILTIN_PLUGINS.length);
  const wrong = BUILTIN_PLUGINS.map((p, i) => ({ got: names[i], want: expectedConstName(p) })).filter((n) => n.got !== n.want);
  assert.deepEqual(wrong, [], `rename: ${wrong.map((n) => `${n.got} → ${n.want}`).join(', ')}`);
});

test('the naming rule: kebab-case names become camelCase, the kind is capitalised', () => {
  assert.equal(expectedConstName({ name: 'spike-slab', kind: 'prior' }), 'spikeSlabPriorPlugin');
  assert.equal(expectedConstName({ name: 'iwae', kind: 'evaluator' }), 'iwaeEvaluatorPlugin');
  assert.equal(expectedConstName({ name: 'mnist', kind: 'dataset' }), 'mnistDatasetPlugin');
});
