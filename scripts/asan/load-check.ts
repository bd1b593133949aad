// Prints which addon file loaded and whether the ASan runtime is in the process (for scripts/asan/run.sh).
import { readFileSync } from 'node:fs';
import { loadNative, NATIVE_ADDON_PATH } from '../../src/io/native.ts';

const addon = loadNative();
const maps = readFileSync('/proc/self/maps', 'utf8');
console.log(JSON.stringify({ addon: NATIVE_ADDON_PATH, loaded: typeof addon.udpOpen === 'function' || typeof addon.aeadCreate === 'function', asanRuntime: /libasan|libclang_rt\.asan/.test(maps), addonMapped: maps.includes(NATIVE_ADDON_PATH) }));
