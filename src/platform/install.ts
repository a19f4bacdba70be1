// Where Latchkey is installed: the folder with package.json, bin/ and src/. The one module that
// reads import.meta.url, so the server bundle (bin/latchkey.js, which may live elsewhere, e.g. in
// systemd's cache directory) can tell it where the sources are.
import { fileURLToPath } from 'node:url';

export const INSTALL_ROOT: string = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
