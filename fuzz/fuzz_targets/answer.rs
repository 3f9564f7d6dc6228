//! Turns fuzz bytes into an HTTP answer for the decoders: the first two bytes pick the status
//! (one of the statuses the decoders branch on, or any 100–999), the third how many of the
//! following `name:value` lines are headers, the rest is the body.

use purgekit::HttpResponse;

const STATUSES: [u16; 8] = [200, 201, 400, 401, 403, 429, 500, 503];

pub fn answer(data: &[u8]) -> HttpResponse {
    let (status, rest) = match data {
        [a, b, rest @ ..] => {
            let pick = u16::from_be_bytes([*a, *b]);
            let status = if pick % 2 == 0 {
                STATUSES[usize::from(pick / 2) % STATUSES.len()]
            } else {
                100 + pick % 900
            };
            (status, rest)
        }
        _ => (200, data),
    };
    let (header_lines, mut body) = match rest {
        [n, body @ ..] => (usize::from(*n % 4), body),
        [] => (0, rest),
    };
    let mut headers = Vec::new();
    for _ in 0..header_lines {
        let Some(end) = body.iter().position(|&b| b == b'\n') else {
            break;
        };
        let line = &body[..end];
        body = &body[end + 1..];
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            headers.push((
                String::from_utf8_lossy(&line[..colon]).into_owned(),
                String::from_utf8_lossy(&line[colon + 1..])
                    .trim()
                    .to_owned(),
            ));
        }
    }
    crate::decoders::response(status, &headers, body)
}
