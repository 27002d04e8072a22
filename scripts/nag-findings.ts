// Prints every unacknowledged cdk-nag finding of every variant (a development aid; the tests enforce zero).
import { build, nagFindings, VARIANTS } from '../test/helpers/synth';

for (const [name, context] of Object.entries(VARIANTS)) {
  const findings = nagFindings(build(context).app);
  process.stdout.write(`${name}: ${findings.length} findings\n${findings.map((f) => `  ${f}`).join('\n')}\n`);
}
