// The same scenario as the spec, run by node from the app's compiled output.
import { runScenario } from './scenario';

runScenario(process.env.THORN_COMPAT_DB ?? 'sqlite').then(
  (events) => console.log(JSON.stringify({ events })),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
