#!/usr/bin/env node
// The `elbo` command. Compiled code lives in dist/ (built by `npm ci` through `prepare`).
const path = require('path');
const fs = require('fs');
if (!fs.existsSync(path.join(__dirname, '..', 'dist', 'src', 'cli', 'commands'))) {
  console.error('elbo: not built yet; run `npm ci` (or `npm run build`) in ' + path.resolve(__dirname, '..'));
  process.exit(1);
}
// Writes to a pipe are asynchronous in Node, and oclif ends a command with process.exit():
// without this, output past the pipe's buffer (64 KiB) was lost (a long --json line cut short).
for (const stream of [process.stdout, process.stderr]) {
  if (stream._handle && typeof stream._handle.setBlocking === 'function') stream._handle.setBlocking(true);
}
require('@oclif/core')
  .execute({ dir: __dirname })
  .catch((e) => {
    console.error(e && e.message ? e.message : String(e));
    process.exit(1);
  });
