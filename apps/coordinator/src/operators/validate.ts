import { formatKey } from '@nokv/config';
import type { RegionMeta } from '@nokv/proto';
import { OperatorError } from '../errors.js';
import type { ClusterView } from '../view.js';
import type { OperationSpec } from './model.js';

/**
 * Checks an operation against the catalog before it is queued. Throws OperatorError:
 * RegionNotFound, StoreNotFound, PeerNotFound, InvalidOperation, StoreNotUp.
 */
export function validateSpec(view: ClusterView, spec: OperationSpec): void {
  const catalog = view.catalog;
  const region = catalog.regions.get(spec.regionId);
  if (!region) throw new OperatorError('RegionNotFound', `region ${spec.regionId} is not known`);
  const store = (id: bigint, what: string) => {
    const s = catalog.stores.get(id);
    if (!s) throw new OperatorError('StoreNotFound', `${what} store ${id} is not known`);
    return s;
  };
  const up = (id: bigint, what: string) => {
    const st = view.storeState(id);
    if (st !== 'up') throw new OperatorError('StoreNotUp', `${what} store ${id} is ${st}`);
  };
  const voters = region.peers.filter((p) => !p.learner);
  switch (spec.kind) {
    case 'add-peer':
      store(spec.storeId, 'target');
      if (region.peers.some((p) => p.storeId === spec.storeId)) {
        throw new OperatorError(
          'InvalidOperation',
          `region ${region.id} has a peer on store ${spec.storeId} already`,
        );
      }
      up(spec.storeId, 'target');
      return;
    case 'remove-peer': {
      const p = region.peers.find((x) => x.peerId === spec.peerId);
      if (!p)
        throw new OperatorError('PeerNotFound', `peer ${spec.peerId} is not a peer of region ${region.id}`);
      if (!p.learner && voters.length <= 1) {
        throw new OperatorError(
          'InvalidOperation',
          `peer ${p.peerId} is the last voter of region ${region.id}`,
        );
      }
      return;
    }
    case 'transfer-leader': {
      const p = region.peers.find((x) => x.peerId === spec.toPeerId);
      if (!p) {
        throw new OperatorError('PeerNotFound', `peer ${spec.toPeerId} is not a peer of region ${region.id}`);
      }
      if (p.learner) {
        throw new OperatorError('InvalidOperation', `peer ${p.peerId} of region ${region.id} is a learner`);
      }
      return;
    }
    case 'split-region': {
      const k = spec.splitKey;
      const inside =
        k.length > 0 &&
        Buffer.compare(k, region.startKey) > 0 &&
        (region.endKey.length === 0 || Buffer.compare(k, region.endKey) < 0);
      if (!inside) {
        throw new OperatorError(
          'InvalidOperation',
          `split key ${formatKey(k)} is not strictly inside region ${region.id} [${formatKey(region.startKey)}, ${formatKey(region.endKey)})`,
        );
      }
      return;
    }
    case 'merge-regions': {
      const source = catalog.regions.get(spec.sourceRegionId);
      if (!source) throw new OperatorError('RegionNotFound', `region ${spec.sourceRegionId} is not known`);
      if (source.id === region.id)
        throw new OperatorError('InvalidOperation', 'a region cannot merge into itself');
      // The stores merge a region into its left neighbour.
      const adjacent = region.endKey.length > 0 && Buffer.compare(region.endKey, source.startKey) === 0;
      if (!adjacent) {
        throw new OperatorError(
          'InvalidOperation',
          `region ${source.id} is not the right neighbour of region ${region.id} (a region merges into its left neighbour)`,
        );
      }
      const stores = (r: RegionMeta) =>
        r.peers
          .map((p) => p.storeId)
          .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
          .join(',');
      if (stores(source) !== stores(region)) {
        throw new OperatorError(
          'InvalidOperation',
          `regions ${source.id} and ${region.id} have replicas on different stores (${stores(source)} vs ${stores(region)})`,
        );
      }
      return;
    }
    case 'replace-replica': {
      store(spec.fromStoreId, 'source');
      const p = region.peers.find((x) => x.storeId === spec.fromStoreId);
      if (!p) {
        throw new OperatorError(
          'PeerNotFound',
          `region ${region.id} has no replica on store ${spec.fromStoreId}`,
        );
      }
      if (spec.toStoreId !== undefined) {
        store(spec.toStoreId, 'target');
        if (region.peers.some((x) => x.storeId === spec.toStoreId)) {
          throw new OperatorError(
            'InvalidOperation',
            `region ${region.id} has a peer on store ${spec.toStoreId} already`,
          );
        }
        up(spec.toStoreId, 'target');
      }
      return;
    }
  }
}
