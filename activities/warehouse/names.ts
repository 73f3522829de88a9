/** Dataset names become table and view names: a worker checks them before any DDL. */
import { datasetNameProblem } from '../../core/names.ts';
import { InvalidDatasetError } from './types.ts';

export function assertDataset(node: string): void {
  const problem = datasetNameProblem(node);
  if (problem) throw new InvalidDatasetError(`dataset '${node}' ${problem}`);
}
