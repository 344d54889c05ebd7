/** `pnpm bench`: prints tables; asserts nothing. ROUNDS=n to change the sample count (RSS_RUNS=n: fresh processes for peak RSS; RSS_TEXT=letter|code|cjk: its text; STREAM_PARTS, STREAMS, STREAM_RECORDS, STREAM_ROUNDS: see stream.mjs; ROUTER_PARTS, PEAK_SECONDS, RSS_REQUESTS: see router.mjs); an argument picks one part, `instructions` (valgrind, minutes) only that way. */
import { clientCost, printClientCost } from './client-cost.mjs';
import { endToEnd, printEndToEnd } from './end-to-end.mjs';
import { nativeCost, printNativeCost } from './native-cost.mjs';
import { keyGenerationTimes, printRotation, rotationLatency } from './rotation.mjs';
import { peakRss, printPeakRss } from './peak-rss.mjs';
import { printStages, stages } from './stages.mjs';
import { printProtocolV2, protocolV2 } from './protocol-v2.mjs';
import { instructionCounts, printInstructionCounts } from './instructions.mjs';
import { printStreaming, streaming } from './stream.mjs';
import { printRouterBench, routerBench } from './router.mjs';

const rounds = Number(process.env.ROUNDS ?? 30);
const only = process.argv[2];

console.log(`node ${process.version}, ${process.platform}-${process.arch}, medians of ${rounds} interleaved rounds (fewer at 5 and 10 MiB)`);
if (!only || only === 'client') printClientCost(await clientCost({ rounds }));
if (!only || only === 'e2e') printEndToEnd(await endToEnd({ rounds }));
if (!only || only === 'native') printNativeCost(await nativeCost({ rounds }));
if (!only || only === 'rotation') printRotation(await rotationLatency(), await keyGenerationTimes());
if (!only || only === 'stages') printStages(await stages({ rounds }));
if (!only || only === 'rss') printPeakRss(await peakRss());
if (!only || only === 'v2') printProtocolV2(await protocolV2({ rounds }));
if (!only || only === 'stream') printStreaming(await streaming({ rounds }));
if (!only || only === 'router') printRouterBench(await routerBench({ rounds }));
// Minutes under valgrind: only when asked for.
if (only === 'instructions') printInstructionCounts(await instructionCounts());
