/**
 * Published Noise test vector for Noise_IK_25519_ChaChaPoly_BLAKE2s, copied verbatim (hex) from
 *   repository: haskell-cryptography/cacophony (the Haskell Noise implementation's vector set)
 *   path:       vectors/cacophony.txt, entry "name": "Noise_IK_25519_ChaChaPoly_BLAKE2s"
 *   commit:     36c1e5c3a799342b226547ce9fdb3579ab60ccd3
 * The same file ships in mcginty/snow as tests/vectors/cacophony.txt. Format:
 * https://github.com/noiseprotocol/noise_wiki/wiki/Test-vectors
 *
 * Messages alternate initiator -> responder starting with the initiator; messages 0-1 are the
 * handshake, 2-5 are transport messages (nonces 0, 0, 1, 1 per direction, empty AD) that check Split.
 */
export interface NoiseVector {
  readonly protocolName: string;
  readonly initPrologue: string;
  readonly initStatic: string;
  readonly initEphemeral: string;
  readonly initRemoteStatic: string;
  readonly respPrologue: string;
  readonly respStatic: string;
  readonly respEphemeral: string;
  readonly messages: readonly { readonly payload: string; readonly ciphertext: string }[];
}

export const CACOPHONY_IK_25519_CHACHAPOLY_BLAKE2S: NoiseVector = {
  protocolName: 'Noise_IK_25519_ChaChaPoly_BLAKE2s',
  initPrologue: '4a6f686e2047616c74',
  initStatic: 'e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1',
  initEphemeral: '893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a',
  initRemoteStatic: '31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62',
  respPrologue: '4a6f686e2047616c74',
  respStatic: '4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893',
  respEphemeral: 'bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b',
  messages: [
    {
      payload: '4c756477696720766f6e204d69736573',
      ciphertext:
        'ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79440b03ddc7aac5123d06a1b23b71670e32e76c28239a7ca4ac8f784de7e44c1adbfc6e83fef7352a58d9d56157400c0a737b1d171ce368229c7b752ac25b8faf4eca690f6d896f543be02c996ab2b86b76',
    },
    {
      payload: '4d757272617920526f746862617264',
      ciphertext:
        '95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843d9b5a8927f0ac9655ef76833bc7e5561f42e691ac8404efd6fbd6308b6a27c',
    },
    {
      payload: '462e20412e20486179656b',
      ciphertext: '2c256ed08fcd08c2980f954ee4beaccb61c9581340f5dd2fd1cf3b',
    },
    {
      payload: '4361726c204d656e676572',
      ciphertext: 'd6033f70eee20945c7c9dba304e397ee3b284ff5e00fd9efb095d3',
    },
    {
      payload: '4a65616e2d426170746973746520536179',
      ciphertext: 'a9c068ca5d8babf72560652d8e851adbfac35c8a66e810d560863173e96adf4cfe',
    },
    {
      payload: '457567656e2042f6686d20766f6e2042617765726b',
      ciphertext: '2a09d8f459e5927e40fdd2eddc99bdafb04e13a26f145cb5cfe9e6ba34c94331ebc17d5156',
    },
  ],
};
