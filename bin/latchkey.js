#!/usr/bin/env node
// Runs the TypeScript sources, with no build step to forget: the first start after a change
// bundles src/ with esbuild (the compiler tsx uses) into .cache/ (or a service's cache directory), and later starts reuse it.
// One bundle loaded in the process, instead of tsx's loader, saves the loader's own thread and
// heap (about 60 MB of a server's resident memory; see BENCHMARKS.md).
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { isBuiltin } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Names, sizes and times of every source file: changes whenever the sources do. */
function fingerprint(dir, hash = crypto.createHash('sha256')) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) fingerprint(file, hash);
    else {
      const stat = fs.statSync(file);
      hash.update(`${file}\0${stat.size}\0${stat.mtimeMs}\n`);
    }
  }
  return hash;
}

const key = fingerprint(path.join(root, 'src')).update(fs.readFileSync(path.join(root, 'package.json'))).digest('hex').slice(0, 16);
// In the cache directory systemd makes for a service (CacheDirectory= sets CACHE_DIRECTORY; the
// first one if it names several), else the install's .cache/.
const cacheDir = process.env.CACHE_DIRECTORY?.split(':')[0] || path.join(root, '.cache');
const bundle = path.join(cacheDir, `latchkey-${key}.mjs`);
/** An esbuild plugin: every package import becomes the file URL it resolves to from here. */
const packagesFromInstall = {
  name: 'packages-from-install',
  setup(builder) {
    builder.onResolve({ filter: /^[^./]/ }, ({ path: specifier }) => ({
      path: specifier.startsWith('node:') || isBuiltin(specifier) ? specifier : import.meta.resolve(specifier),
      external: true,
    }));
  },
};

async function build() {
  const esbuild = await import('esbuild');
  const temp = `${bundle}.${process.pid}.tmp`;
  await esbuild.build({
    entryPoints: [path.join(root, 'src/main.ts')],
    outfile: temp,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Packages stay out of the bundle, imported from the install's node_modules by their full
    // path: the bundle may live outside the install, where no node_modules is found.
    plugins: [packagesFromInstall],
    sourcemap: 'linked',
    logLevel: 'silent',
    // src/platform/install.ts, the one module that reads import.meta.url, finds the install from it
    // wherever the bundle is.
    define: { 'import.meta.url': JSON.stringify(pathToFileURL(path.join(root, 'src/platform/install.ts')).href) },
  });
  // Processes starting at once each build; the rename makes whichever lands last whole.
  fs.renameSync(`${temp}.map`, `${bundle}.map`);
  fs.renameSync(temp, bundle);
  // Older bundles are dead weight; a process still running one has it loaded already.
  for (const old of fs.readdirSync(path.dirname(bundle))) {
    if (old.startsWith('latchkey-') && !old.startsWith(path.basename(bundle)) && !old.endsWith('.tmp')) fs.rmSync(path.join(path.dirname(bundle), old), { force: true });
  }
}

let bundled = fs.existsSync(bundle);
if (!bundled) {
  try {
    await build();
    bundled = true;
  } catch {
    // A read-only install (a container whose app directory is not the user's): run the
    // sources through tsx's loader instead, as fast, with a heavier process.
  }
}
if (bundled) {
  // Stack traces name src/*.ts lines, through the bundle's source map.
  process.setSourceMapsEnabled(true);
  await import(pathToFileURL(bundle).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
