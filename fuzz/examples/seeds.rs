//! Writes the seed corpus, a few valid inputs per target, into
//! `fuzz/corpus/<target>/seed-*` (run from `fuzz/`:
//! `cargo run --example seeds`; stable is enough). The files are committed;
//! rerun after changing a format or the session script encoding.

use std::path::Path;

use peerhost_core::json::JsonValue;
use peerhost_core::manifest::SignedManifest;
use peerhost_core::signal::*;
use peerhost_core::wire::Frame;
use peerhost_fuzz::json_tree;
use peerhost_fuzz::session::*;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let f = fixture();
    let v1 = &f.manifests[0];
    let v2 = &f.manifests[1];
    let key = f.site_key;
    let id = |b: u8| PeerId([b'a' + b; 20]);
    let hash = swarm_id(&key, 1);

    let client = [
        ClientMessage::Announce(Announce {
            info_hash: hash,
            peer_id: id(0),
            numwant: Some(2),
            uploaded: 0,
            downloaded: 1024,
            left: Some(3),
            event: AnnounceEvent::Started,
            offers: vec![Offer {
                offer_id: OfferId([b'o'; 20]),
                offer: Sdp::offer("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"),
            }],
        }),
        ClientMessage::Answer(AnswerMsg {
            info_hash: hash,
            peer_id: id(1),
            to_peer_id: id(0),
            offer_id: OfferId([b'o'; 20]),
            answer: Sdp::answer("v=0\r\n"),
        }),
        ClientMessage::Scrape {
            info_hashes: vec![hash, swarm_id(&key, 2)],
        },
        ClientMessage::PublishManifest {
            manifest: v1.bytes.clone(),
        },
        ClientMessage::SubscribeManifest {
            site_key: key,
            have_version: 1,
        },
    ];
    let server = [
        ServerMessage::AnnounceResponse {
            info_hash: hash,
            interval: 120,
            complete: 1,
            incomplete: 2,
            ice_servers: Vec::new(),
        },
        ServerMessage::Offer(RelayedOffer {
            info_hash: hash,
            peer_id: id(0),
            offer_id: OfferId([0x80; 20]),
            offer: Sdp::offer("v=0\r\n"),
        }),
        ServerMessage::Answer(RelayedAnswer {
            info_hash: hash,
            peer_id: id(1),
            offer_id: OfferId([b'o'; 20]),
            answer: Sdp::answer("v=0\r\n"),
        }),
        ServerMessage::ScrapeResponse {
            files: vec![(hash, ScrapeFile::default())],
        },
        ServerMessage::Error {
            action: "announce".into(),
            failure_reason: "no".into(),
            info_hash: Some(hash),
        },
        ServerMessage::ManifestPush {
            site_key: key,
            version: 2,
            manifest: v2.bytes.clone(),
        },
        ServerMessage::PublishResult { version: 2 },
    ];

    let client_json: Vec<Vec<u8>> = client.iter().map(|m| m.to_json().into_bytes()).collect();
    let server_json: Vec<Vec<u8>> = server.iter().map(|m| m.to_json().into_bytes()).collect();
    write(&root, "client_message_json", &client_json)?;
    write(&root, "server_message_json", &server_json)?;
    let values: Vec<JsonValue> = client
        .iter()
        .map(ClientMessage::to_value)
        .chain(server.iter().map(ServerMessage::to_value))
        .collect();
    write(
        &root,
        "signal_value",
        &values.iter().map(json_tree::encode).collect::<Vec<_>>(),
    )?;
    let manifests: Vec<&SignedManifest> = vec![&v1.signed, &v2.signed];
    let mut manifest_values: Vec<Vec<u8>> =
        manifests.iter().map(|m| m.to_json().into_bytes()).collect();
    manifest_values.extend(manifests.iter().map(|m| json_tree::encode(&m.to_value())));
    write(&root, "manifest_value", &manifest_values)?;
    write(
        &root,
        "manifest_json",
        &manifests
            .iter()
            .map(|m| m.to_json().into_bytes())
            .collect::<Vec<_>>(),
    )?;
    write(
        &root,
        "manifest_bytes",
        &manifests.iter().map(|m| m.to_bytes()).collect::<Vec<_>>(),
    )?;
    let frames = [
        Frame::Handshake {
            site_key: *key.as_bytes(),
            version: 1,
            piece_count: 4,
            have: vec![0xf0],
        },
        Frame::Have { piece: 3 },
        Frame::Request { piece: 1 },
        Frame::Piece {
            piece: 0,
            data: v1.pieces[0].clone(),
        },
        Frame::Cancel { piece: 2 },
        Frame::Reject { piece: 2 },
        Frame::ManifestOffer {
            version: 1,
            total_len: v1.bytes.len() as u32,
            offset: 0,
            chunk: v1.bytes.clone(),
        },
    ];
    write(
        &root,
        "wire_frame",
        &frames.iter().map(Frame::encode).collect::<Vec<_>>(),
    )?;
    write(&root, "client_session", &sessions())?;
    Ok(())
}

/// Scripts of whole sessions (see `peerhost_fuzz::session` for the ops).
/// Connection arguments index the connections the client created, in order.
fn sessions() -> Vec<Vec<u8>> {
    let push = ServerMessage::ManifestPush {
        site_key: fixture().site_key,
        version: 2,
        manifest: fixture().manifests[1].bytes.clone(),
    }
    .to_json();
    let mut text = (push.len() as u16).to_be_bytes().to_vec();
    text.extend_from_slice(push.as_bytes());
    // (frame kind, args) of a piece of v1 from connection `c`.
    let piece = |c: u8, p: u8| [c, FRAME_PIECE, 0, p, 0, 1];
    vec![
        // A lone visitor: origin only.
        Script::new(0, 1)
            .op(OP_MANIFEST, &[0, 0])
            .op(OP_TRACKER_CLOSED, &[])
            .op(OP_WANT, &[1, 0])
            .op(OP_ORIGIN, &[0, 0])
            .op(OP_ORIGIN, &[1, 0])
            .op(OP_ORIGIN, &[2, 0])
            .op(OP_TIMEOUT, &[0])
            .op(OP_WANT, &[2, 3])
            .0,
        // Our offers, an answer, a handshake, pieces from the peer.
        Script::new(0, 2)
            .op(OP_MANIFEST, &[0, 0])
            .op(OP_TRACKER_CONNECTED, &[])
            .op(OP_ANNOUNCE_RESPONSE, &[0, 0, 120, 2, 0])
            .op(OP_LOCAL_SDP, &[0, 0])
            .op(OP_LOCAL_SDP, &[1, 0])
            .op(OP_LOCAL_SDP, &[2, 0])
            .op(OP_LOCAL_SDP, &[3, 0])
            .op(OP_LOCAL_SDP, &[4, 0])
            .op(OP_REMOTE_ANSWER, &[0, 0, 1])
            .op(OP_PEER_OPEN, &[0])
            .op(OP_PEER_FRAME, &[0, FRAME_HANDSHAKE, 0, 1, 1])
            .op(OP_WANT, &[1, 0])
            .op(OP_PEER_FRAME, &piece(0, 0))
            .op(OP_PEER_FRAME, &piece(0, 1))
            .op(OP_PEER_FRAME, &piece(0, 2))
            .op(OP_TIMEOUT, &[0])
            .op(OP_TIMEOUT, &[2, 0, 60])
            .0,
        // A remote offer from a peer on v2: it sends the newer manifest.
        Script::new(8, 3)
            .op(OP_MANIFEST, &[0, 1])
            .op(OP_TRACKER_CONNECTED, &[])
            .op(OP_REMOTE_OFFER, &[0, 2, 7])
            .op(OP_LOCAL_SDP, &[0, 0])
            .op(OP_PEER_OPEN, &[0])
            .op(OP_PEER_FRAME, &[0, FRAME_HANDSHAKE, 1, 1, 0])
            .op(OP_PEER_FRAME, &[0, FRAME_MANIFEST, 1, 0, 1])
            .op(OP_WANT, &[3, 2])
            .op(OP_PEER_FRAME, &[0, FRAME_PIECE, 1, 4, 0, 0])
            .op(OP_PEER_FRAME, &[0, FRAME_PIECE, 1, 5, 0, 1])
            .op(OP_TIMEOUT, &[1, 0x13, 0x88])
            .0,
        // Deferred signature and hash checks answered by the driver.
        Script::new(3, 4)
            .op(OP_MANIFEST, &[0, 0])
            .op(OP_SIGNATURE_CHECKED, &[0])
            .op(OP_TRACKER_CONNECTED, &[])
            .op(OP_REMOTE_OFFER, &[0, 3, 9])
            .op(OP_LOCAL_SDP, &[0, 0])
            .op(OP_PEER_OPEN, &[0])
            .op(OP_PEER_FRAME, &[0, FRAME_HANDSHAKE, 0, 1, 0])
            .op(OP_WANT, &[1, 1])
            .op(OP_PEER_FRAME, &piece(0, 3))
            .op(OP_PIECE_HASHED, &[0])
            .op(OP_TRACKER_TEXT, &text)
            .op(OP_SIGNATURE_CHECKED, &[0])
            .0,
        // A seeder uploads to a peer that requests.
        Script::new(0, 5)
            .op(OP_MANIFEST, &[0, 1])
            .op(OP_ASSET_HELD, &[0, 0, 0])
            .op(OP_ASSET_HELD, &[0, 1, 0])
            .op(OP_TRACKER_CONNECTED, &[])
            .op(OP_REMOTE_OFFER, &[0, 4, 11])
            .op(OP_LOCAL_SDP, &[0, 0])
            .op(OP_PEER_OPEN, &[0])
            .op(OP_PEER_FRAME, &[0, FRAME_HANDSHAKE, 0, 0, 1])
            .op(OP_PEER_FRAME, &[0, FRAME_REQUEST, 0, 0])
            .op(OP_PEER_FRAME, &[0, FRAME_REQUEST, 3, 1])
            .op(OP_PEER_FRAME, &[0, FRAME_CANCEL, 1, 0])
            .op(OP_TIMEOUT, &[0])
            .op(OP_PEER_CLOSED, &[0])
            .op(OP_LEAVE, &[])
            .0,
    ]
}

fn write(root: &Path, target: &str, seeds: &[Vec<u8>]) -> std::io::Result<()> {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir)?;
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), s)?;
    }
    println!("{target}: {} seeds", seeds.len());
    Ok(())
}
