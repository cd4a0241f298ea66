import { CoordinatorService, uint64FromWire } from '@nokv/proto';
import { StoreError } from '@nokv/raftstore';
import { createClient, type RpcClient } from '@nokv/raftstore/grpc';

// New region and peer ids for the store's automatic split, from the coordinator's AllocId (the
// only source of cluster-unique ids). A failed call only postpones a split to the next check.

export class CoordinatorIdAllocator {
  private readonly client: RpcClient<typeof CoordinatorService>;

  constructor(
    coordinatorAddr: string,
    private readonly timeoutMs = 2000,
  ) {
    this.client = createClient(CoordinatorService, coordinatorAddr);
  }

  async allocIds(count: number): Promise<bigint[]> {
    const res = await this.client.call(CoordinatorService.AllocId, { count }, { deadlineMs: this.timeoutMs });
    const first = uint64FromWire(res.firstId);
    if (first === 0n || (res.count ?? 0) < count) {
      throw new StoreError(
        'Unavailable',
        `coordinator allocated ${res.count ?? 0} ids, ${count} were asked for`,
      );
    }
    return Array.from({ length: count }, (_, i) => first + BigInt(i));
  }

  close(): void {
    this.client.close();
  }
}
