import RunsList from './list';

/** `elbo runs` alone lists the runs (as `elbo runs list`), so its flags are never ignored. */
export default class Runs extends RunsList {
  static summary = 'List the runs of the run store (as `runs list`); `runs show RUN` shows one';
  static examples = ['<%= config.bin %> runs', '<%= config.bin %> runs --experiment quickstart --status finished', '<%= config.bin %> runs show RUN_ID'];

  async run(): Promise<void> {
    await this.parse(Runs);
    return super.run();
  }
}
