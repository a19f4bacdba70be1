// The package's version, for `latchkey --version` and the OpenAPI document.
import fs from 'node:fs';
import path from 'node:path';
import { INSTALL_ROOT } from './install.ts';

export const VERSION: string = JSON.parse(fs.readFileSync(path.join(INSTALL_ROOT, 'package.json'), 'utf8')).version;
