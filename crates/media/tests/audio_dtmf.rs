//! RFC 4733 telephone-event payload: layout, round trip and digit mapping.

use sotto_media::audio::TelephoneEvent;
use sotto_media::audio::dtmf::{DtmfError, digit_to_event, event_to_digit};

#[test]
fn layout_matches_rfc4733_section_2_3() {
    // Digit 5, end bit, volume 10 (−10 dBm0), duration 1600 (200 ms at 8 kHz).
    let e = TelephoneEvent {
        event: 5,
        end: true,
        volume: 10,
        duration: 1600,
    };
    assert_eq!(e.encode(), [0x05, 0x8a, 0x06, 0x40]);
    assert_eq!(TelephoneEvent::parse(&[0x05, 0x8a, 0x06, 0x40]).unwrap(), e);
    // The R bit is ignored on receipt and the volume keeps 6 bits.
    let r = TelephoneEvent::parse(&[11, 0x40 | 0x3f, 0xff, 0xff]).unwrap();
    assert_eq!(
        r,
        TelephoneEvent {
            event: 11,
            end: false,
            volume: 63,
            duration: 65535
        }
    );
    assert_eq!(r.digit(), Some('#'));
    // Extra octets are ignored; short payloads are refused.
    assert_eq!(
        TelephoneEvent::parse(&[1, 0, 0, 160, 9, 9])
            .unwrap()
            .duration,
        160
    );
    assert_eq!(
        TelephoneEvent::parse(&[1, 0, 0]),
        Err(DtmfError::Truncated(3))
    );
    assert_eq!(TelephoneEvent::parse(&[]), Err(DtmfError::Truncated(0)));
}

#[test]
fn round_trip_every_field() {
    for event in [0u8, 9, 10, 11, 15, 16, 255] {
        for end in [false, true] {
            for volume in [0u8, 1, 37, 63] {
                for duration in [0u16, 1, 160, 800, 65535] {
                    let e = TelephoneEvent {
                        event,
                        end,
                        volume,
                        duration,
                    };
                    assert_eq!(TelephoneEvent::parse(&e.encode()).unwrap(), e);
                }
            }
        }
    }
    // A volume above 63 is sent as its low 6 bits and never touches the E or R bits.
    let e = TelephoneEvent {
        event: 1,
        end: false,
        volume: 0xff,
        duration: 0,
    };
    assert_eq!(e.encode()[1], 0x3f);
}

#[test]
fn digits() {
    let all = "0123456789*#ABCD";
    for (i, c) in all.chars().enumerate() {
        assert_eq!(digit_to_event(c), Some(i as u8));
        assert_eq!(event_to_digit(i as u8), Some(c));
    }
    assert_eq!(digit_to_event('b'), Some(13));
    assert_eq!(digit_to_event('E'), None);
    assert_eq!(digit_to_event(' '), None);
    assert_eq!(event_to_digit(16), None);
}
