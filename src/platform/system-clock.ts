/** The host's clock as a {@link Clock} (ms since epoch). */
import type { Clock } from "../core/clock.ts";
import { EpochMs } from "../core/units.ts";

export const systemClock: Clock = { now: () => EpochMs(Date.now()) };
