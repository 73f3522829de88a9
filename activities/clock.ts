/**
 * The clock that workflows read through a local activity. Workflow code reads no clock
 * itself; the value a local activity returns is recorded in the history (a marker), so a
 * replay sees exactly the time the original run saw.
 */
export const clockActivities = {
  async currentTimeMs(): Promise<number> {
    return Date.now();
  },
};

export type ClockActivities = typeof clockActivities;
