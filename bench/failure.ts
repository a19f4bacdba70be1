/** A scenario whose setup or answers are wrong: the run reports it and exits 1. */
export class ScenarioFailed extends Error {}
