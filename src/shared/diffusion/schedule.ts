/**
 * The forward-process noise schedule of METHOD.md §2: T = 100, betas = linspace(sqrt(0.0015),
 * sqrt(0.0195), T)^2, alpha_bar_t = prod_{i<=t} (1 - beta_i), timesteps indexed 0..T-1.
 */
export interface ScheduleConfig {
  readonly steps: number;
  readonly betaStart: number;
  readonly betaEnd: number;
}

export const DEFAULT_SCHEDULE: ScheduleConfig = Object.freeze({ steps: 100, betaStart: 0.0015, betaEnd: 0.0195 });

export interface Schedule {
  readonly config: ScheduleConfig;
  readonly betas: Float64Array;
  readonly alphaBar: Float64Array;
}

export function makeSchedule(config: ScheduleConfig = DEFAULT_SCHEDULE): Schedule {
  const { steps, betaStart, betaEnd } = config;
  const betas = new Float64Array(steps);
  const alphaBar = new Float64Array(steps);
  const a = Math.sqrt(betaStart);
  const b = Math.sqrt(betaEnd);
  let prod = 1;
  for (let i = 0; i < steps; i++) {
    const s = steps === 1 ? a : a + ((b - a) * i) / (steps - 1);
    betas[i] = s * s;
    prod *= 1 - betas[i]!;
    alphaBar[i] = prod;
  }
  return { config, betas, alphaBar };
}
