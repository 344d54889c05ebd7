/** `pnpm bench`: prints tables; asserts nothing. ROUNDS=n to change the sample count. */
import { clientCost, printClientCost } from './client-cost.mjs';

const rounds = Number(process.env.ROUNDS ?? 30);
const only = process.argv[2];

console.log(`node ${process.version}, ${process.platform}-${process.arch}, medians of ${rounds} interleaved rounds`);
if (!only || only === 'client') printClientCost(await clientCost({ rounds }));
