import * as parser from "socket.io-parser";
import { packetBytes } from "../kernel/limits.js";

/**
 * Socket.IO's parser, with the bytes of one binary packet bounded as a whole.
 * A binary event is a text header then its attachments, one transport frame
 * each; Engine.IO bounds each frame (`maxHttpBufferSize`) and the parser
 * counts attachments (ten by default), not their bytes. So a connection could
 * have the server hold ten frames' worth of attachments of a packet it never
 * finishes, before its handshake is ever checked (Socket.IO keeps a
 * connection that joined no namespace for 45 s). With this parser, a binary
 * packet over `maxPacketBytes` of attachments is a protocol error: Socket.IO
 * closes the connection, and what it sent is let go, as with a frame over the
 * transport's cap. A packet under it reaches the dispatcher, whose
 * `maxPayloadBytes` check counts all of its frames.
 */
export function boundedParser(maxPacketBytes: number): typeof parser {
  class BoundedDecoder extends parser.Decoder {
    /** Bytes of the attachments of the binary packet being put together; a text frame starts the next packet. */
    private attachmentBytes = 0;

    override add(frame: unknown): void {
      if (typeof frame === "string") {
        this.attachmentBytes = 0;
      } else {
        this.attachmentBytes += packetBytes(frame);
        if (this.attachmentBytes > maxPacketBytes) throw new Error(`a binary packet over ${maxPacketBytes} bytes`);
      }
      super.add(frame);
    }
  }
  return { ...parser, Decoder: BoundedDecoder };
}
