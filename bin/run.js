#!/usr/bin/env node
// The `elbo` command. Compiled code lives in dist/ (built by `npm ci` through `prepare`).
const path = require('path');
const fs = require('fs');
if (!fs.existsSync(path.join(__dirname, '..', 'dist', 'src', 'cli', 'commands'))) {
  console.error('elbo: not built yet; run `npm ci` (or `npm run build`) in ' + path.resolve(__dirname, '..'));
  process.exit(1);
}
require('@oclif/core')
  .execute({ dir: __dirname })
  .catch((e) => {
    console.error(e && e.message ? e.message : String(e));
    process.exit(1);
  });
