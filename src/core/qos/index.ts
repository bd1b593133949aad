/**
 * QoS per WAN link (DESIGN.md "QoS"). Order of use:
 *   policy     ClassQueuePolicy per class (policy.ts): priority or DRR weight, queue bounds
 *   scheduler  LinkScheduler per shaped link (scheduler.ts): enqueue -> strict priority / DRR ->
 *              token bucket at the link's uplink rate -> dequeue at timer deadlines
 *   marking    the outer DSCP per class is ClassPolicy.outerDscp (steer/classes.ts), set on every
 *              Transmit by the Edge; probes and control go as network control (class 0)
 */
export {
  DEFAULT_QUEUE_MS,
  DEFAULT_QUEUE_POLICIES,
  EQUALIZE_QUEUE_MS,
  EQUALIZE_QUEUE_PACKETS,
  MAX_QUEUE_PACKETS,
  MIN_QUEUE_BYTES,
  OUTER_HEADER_BYTES,
  QUANTUM_BYTES,
  checkQueuePolicy,
  type ClassQueuePolicy,
} from './policy.ts';
export { LinkScheduler, type ClassQueueCounters, type LinkSchedulerConfig, type Queued } from './scheduler.ts';
