// Generates src/core/wire/descriptor.ts from overlay.proto. The core cannot read files, so it
// builds its codec from this JSON descriptor (protobufjs reflection + generated codecs).
import protobuf from 'protobufjs';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const protoPath = fileURLToPath(new URL('../src/core/wire/overlay.proto', import.meta.url));
const outPath = fileURLToPath(new URL('../src/core/wire/descriptor.ts', import.meta.url));

export function descriptorFromProto(): unknown {
  return protobuf.loadSync(protoPath).toJSON();
}

export function renderDescriptorModule(): string {
  return (
    '// GENERATED from overlay.proto by `npm run gen:proto`. Do not edit by hand.\n' +
    'export const overlayDescriptor = ' +
    JSON.stringify(descriptorFromProto(), null, 2) +
    ' as const;\n'
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(outPath, renderDescriptorModule());
  process.stdout.write(`wrote ${outPath}\n`);
}
