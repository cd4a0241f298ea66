export { ClientError, type ClientErrorCode, RawClient, type RawClientOptions } from './raw-client.js';
