/**
 * The `backfill` command line: the program, its global options, and one module per command
 * under client/commands/. Every command takes --json for machine-readable output.
 *
 * Adding a command: write client/commands/<name>.ts exporting a function that returns the
 * command (`documented(new Command('<name>'), HELP_GROUPS.<group>, [examples])` with its
 * options and action), and add one `.addCommand(<name>Command())` line below. Keep the
 * module's own imports light (commander, the shared options, help): it is loaded for every
 * command, `--version` included. Import what the action needs inside the action, so that a
 * command pays only for what it uses.
 */
import { Command } from '@commander-js/extra-typings';
import pc from 'picocolors';
import { BackfillError } from '../core/errors.ts';
import { packageJson } from '../host/package.ts';
import { approveCommand } from './commands/approve.ts';
import { auditCommand } from './commands/audit.ts';
import { settingsFromEnv } from '../host/settings.ts';
import { cancelCommand } from './commands/cancel.ts';
import { demoCommand } from './commands/demo.ts';
import { devCommand } from './commands/dev.ts';
import { initCommand } from './commands/init.ts';
import { lineageCommand } from './commands/lineage.ts';
import { pauseCommand } from './commands/pause.ts';
import { planCommand } from './commands/plan.ts';
import { policyCommand } from './commands/policy.ts';
import { reportCommand } from './commands/report.ts';
import { resumeCommand } from './commands/resume.ts';
import { retryFailedCommand } from './commands/retry-failed.ts';
import { rollbackCommand } from './commands/rollback.ts';
import { setBudgetCommand } from './commands/set-budget.ts';
import { setConcurrencyCommand } from './commands/set-concurrency.ts';
import { setQueueRateCommand } from './commands/set-queue-rate.ts';
import { setRateCommand } from './commands/set-rate.ts';
import { setupCommand } from './commands/setup.ts';
import { diffCommand, discardCommand, publishCommand } from './commands/staged.ts';
import { startCommand } from './commands/start.ts';
import { statusCommand } from './commands/status.ts';
import { waitCommand } from './commands/wait.ts';
import { workerCommand } from './commands/worker.ts';
import { EXIT } from './exit-codes.ts';
import { topLevelHelpText } from './help.ts';

export { EXIT, exitCodeFor } from './exit-codes.ts';

/**
 * The program's command class: a command added to it inherits the program's settings (errors
 * reach main() instead of exiting inside commander, help after an error, red errors), as one
 * made with `.command()` would.
 */
class Program extends Command {
  override addCommand(command: Parameters<Command['addCommand']>[0], options?: Parameters<Command['addCommand']>[1]): this {
    command.copyInheritedSettings(this);
    return super.addCommand(command, options);
  }

  override createCommand(name?: string): Command {
    // Only commander's own `help [command]` is made here: listed last, in a group of its own.
    const command = new Command(name);
    if (name === 'help') command.helpGroup('Help:');
    return command;
  }
}

export function buildProgram() {
  return new Program()
    .name('backfill')
    .description('Durable, rate-limited backfills of partitioned datasets, on Temporal')
    .option('--address <host:port>', "Temporal frontend (default $TEMPORAL_ADDRESS, the profile's address, or localhost:7233)")
    .option('--namespace <name>', "Temporal namespace (default $TEMPORAL_NAMESPACE, the profile's namespace, or default)")
    .option('--profile <name>', 'profile of the Temporal config file ($TEMPORAL_CONFIG_FILE or ~/.config/temporalio/temporal.toml; default $TEMPORAL_PROFILE or default)')
    .version(packageJson().version)
    .addHelpText('after', topLevelHelpText())
    // Before any command is added, so that each inherits it: a command's usage error then
    // reaches main() too (JSON with --json, exit code 1) instead of exiting inside commander.
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(pc.red(text)) })
    .addCommand(planCommand())
    .addCommand(startCommand())
    .addCommand(statusCommand())
    .addCommand(waitCommand())
    .addCommand(policyCommand())
    .addCommand(pauseCommand())
    .addCommand(cancelCommand())
    .addCommand(resumeCommand())
    .addCommand(retryFailedCommand())
    .addCommand(setRateCommand())
    .addCommand(setConcurrencyCommand())
    .addCommand(setQueueRateCommand())
    .addCommand(setBudgetCommand())
    .addCommand(approveCommand())
    .addCommand(lineageCommand())
    .addCommand(diffCommand())
    .addCommand(publishCommand())
    .addCommand(discardCommand())
    .addCommand(rollbackCommand())
    .addCommand(reportCommand())
    .addCommand(auditCommand())
    .addCommand(initCommand())
    .addCommand(setupCommand())
    .addCommand(workerCommand())
    .addCommand(devCommand())
    .addCommand(demoCommand());
}

function reportError(error: unknown, json: boolean): void {
  const failure =
    error instanceof BackfillError
      ? error
      : new BackfillError('failed', error instanceof Error ? error.message : String(error));
  if (json) process.stdout.write(`${JSON.stringify({ error: failure.toJSON() }, null, 2)}\n`);
  else process.stderr.write(`${pc.red('error:')} ${failure.message}\n`);
}

export async function main(argv = process.argv): Promise<void> {
  const json = argv.includes('--json');
  const program = buildProgram();
  try {
    // Adapters register their schemes before any command opens a warehouse; the registry loads only when some are named.
    const { warehouseAdapters } = settingsFromEnv();
    if (warehouseAdapters !== undefined) await (await import('../activities/warehouse/registry.ts')).loadWarehouseAdapters(warehouseAdapters);
    await program.parseAsync(argv);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') {
      process.exitCode = EXIT.ok;
      return;
    }
    if (typeof code === 'string' && code.startsWith('commander.')) {
      if (json) reportError(new BackfillError('invalid_argument', (error as Error).message.replace(/^error: /, '')), true);
      process.exitCode = EXIT.error;
      return;
    }
    reportError(error, json);
    process.exitCode = EXIT.error;
  }
}
