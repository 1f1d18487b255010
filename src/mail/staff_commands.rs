//! Email commands a technician writes at the top of a reply (SPEC §3):
//! `#status waiting-on-client`, `#priority high`, `#category network`,
//! `#assign alice`, `#close`, `#note`, `#time 1h30`, `#requester
//! alice@customer.test` and `#fwd`, each on its own line.
//!
//! This module only reads the text: it turns the top of a (trimmed) reply into
//! typed [`Command`]s and the rest of the text. It does not know who sent the
//! mail — only configured staff addresses may use commands, and the caller
//! checks that before calling [`parse_staff_reply`] — and it changes nothing:
//! applying the commands to a ticket belongs to ingest and `db`.
//!
//! The rules, chosen so that a technician's prose is never mistaken for a
//! command and a mistyped command is never mailed to a client:
//!
//! * Commands are read from the leading lines only. Blank lines before and
//!   between them are skipped; the first other line ends the block, and it
//!   and everything after it is the body, untouched — a `#` further down is
//!   just text.
//! * A command line is optional whitespace, `#`, and a word of ASCII letters
//!   ending at whitespace, a `:` or the end of the line (`#status closed`,
//!   `#Status: closed`). `# Heading`, `## Heading`, `#1 priority is…` and
//!   `#T-1042 is…` are not command lines, so they start the body.
//! * A command line with a word that is not a command (`#frobnicate`,
//!   `#staus closed`) is an error rather than body text: sent on as a public
//!   reply, a typo would show the client a half-finished instruction.
//! * Every error in the block is reported, not just the first, and any error
//!   means no command applies: [`parse_staff_reply`] returns either all the
//!   commands or all the errors.

use std::fmt;

use serde::Serialize;

use crate::domain::{EmailAddress, EmailAddressError, Priority, TicketStatus};

/// The most time one `#time` command may book: a longer figure is a typo
/// (`#time 90` meant as minutes is fine, `#time 90h` is not).
const MAX_MINUTES_PER_COMMAND: u32 = 24 * 60;

/// The command words, as they are listed back to a technician who mistyped one.
const KNOWN_COMMANDS: &str =
    "#status, #priority, #category, #assign, #close, #note, #time, #requester, #fwd";

/// One change a technician asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "command", content = "value", rename_all = "kebab-case")]
pub enum Command {
    /// `#status <status>`.
    Status(TicketStatus),
    /// `#priority <priority>`.
    Priority(Priority),
    /// `#category <name>`, the name as written.
    Category(String),
    /// `#assign <staff name or address>`, as written; the caller resolves it.
    Assign(String),
    /// `#close`: the same as `#status closed`.
    Close,
    /// `#note`: the reply is an internal note, not sent to the client.
    Note,
    /// `#time <duration>`: time worked, booked against the client's hours.
    Time { minutes: u32 },
    /// `#requester <address>`: a ticket opened on behalf of this contact.
    Requester(#[serde(serialize_with = "serialize_address")] EmailAddress),
    /// `#fwd` (or `#forward`): the reply forwards the client's own mail and
    /// the ticket is the client's.
    #[serde(rename = "fwd")]
    Forward,
}

impl Command {
    /// The command word as a technician writes it, without `#`.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Status(_) => "status",
            Self::Priority(_) => "priority",
            Self::Category(_) => "category",
            Self::Assign(_) => "assign",
            Self::Close => "close",
            Self::Note => "note",
            Self::Time { .. } => "time",
            Self::Requester(_) => "requester",
            Self::Forward => "fwd",
        }
    }
}

fn serialize_address<S: serde::Serializer>(
    address: &EmailAddress,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(address.as_str())
}

/// A technician's reply split into its commands and the text that remains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffReply {
    /// The commands in the order they were written.
    pub commands: Vec<Command>,
    /// The text from the first line that is not a command or blank, as it
    /// was (line endings included); empty when the reply is only commands.
    pub body: String,
}

/// What is wrong with one command line. `line` is the 1-based line number in
/// the reply as the technician wrote it, and every message names it, so one
/// answer can list everything that needs fixing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("line {line}: unknown command `#{word}`; the commands are {KNOWN_COMMANDS}")]
    Unknown { line: usize, word: String },
    #[error("line {line}: #{command} needs {expected}")]
    MissingArgument {
        line: usize,
        command: &'static str,
        expected: &'static str,
    },
    #[error("line {line}: #{command} takes nothing after it, but found `{found}`")]
    UnexpectedArgument {
        line: usize,
        command: &'static str,
        found: String,
    },
    #[error("line {line}: #status: {reason}")]
    Status { line: usize, reason: String },
    #[error("line {line}: #priority: {reason}")]
    Priority { line: usize, reason: String },
    #[error("line {line}: #time: `{value}` {problem}")]
    Time {
        line: usize,
        value: String,
        problem: DurationProblem,
    },
    #[error("line {line}: #requester: `{value}` is not a mail address: {problem}")]
    Requester {
        line: usize,
        value: String,
        problem: EmailAddressError,
    },
    #[error("line {line}: #requester takes one mail address, but found {count} words")]
    SeveralRequesters { line: usize, count: usize },
    #[error("line {line}: #{command} repeats or contradicts #{earlier} on line {earlier_line}")]
    Repeated {
        line: usize,
        command: &'static str,
        earlier: &'static str,
        earlier_line: usize,
    },
}

impl CommandError {
    /// The 1-based line of the reply the error is about.
    pub fn line(&self) -> usize {
        match self {
            Self::Unknown { line, .. }
            | Self::MissingArgument { line, .. }
            | Self::UnexpectedArgument { line, .. }
            | Self::Status { line, .. }
            | Self::Priority { line, .. }
            | Self::Time { line, .. }
            | Self::Requester { line, .. }
            | Self::SeveralRequesters { line, .. }
            | Self::Repeated { line, .. } => *line,
        }
    }
}

/// Why a `#time` duration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationProblem {
    /// Not in a form like `1h30`, `1h 30m`, `90m`, `1.5h`, `1:30` or `45`.
    Unreadable,
    /// Zero minutes, which books nothing.
    Zero,
    /// More than 24 hours in one command.
    TooLong,
}

impl fmt::Display for DurationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unreadable => "is not a duration like 1h30, 1h 30m, 90m, 1.5h or 45 (minutes)",
            Self::Zero => "is no time at all",
            Self::TooLong => "is more than 24 hours in one command",
        })
    }
}

/// Splits a technician's reply into the commands at its top and the rest.
/// Either every command is valid and all of them are returned, or every
/// problem is returned and none of the commands is.
pub fn parse_staff_reply(text: &str) -> Result<StaffReply, Vec<CommandError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut commands: Vec<(usize, Command)> = Vec::new();
    let mut errors = Vec::new();
    let mut body_start = text.len();

    let mut offset = 0;
    for (index, raw_line) in text.split_inclusive('\n').enumerate() {
        let line_number = index + 1;
        let line = raw_line.trim_end_matches('\n').trim_end_matches('\r');
        if line.trim().is_empty() {
            offset += raw_line.len();
            continue;
        }
        let Some((word, argument)) = split_command_line(line) else {
            body_start = offset;
            break;
        };
        match parse_command(line_number, word, argument) {
            Ok(command) => {
                if let Some(error) = repetition_error(line_number, &command, &commands) {
                    errors.push(error);
                }
                commands.push((line_number, command));
            }
            Err(error) => errors.push(error),
        }
        offset += raw_line.len();
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(StaffReply {
        commands: commands.into_iter().map(|(_, command)| command).collect(),
        body: text[body_start..].to_string(),
    })
}

/// The command word and the (trimmed) rest of a command line, or `None` when
/// the line is prose: not `#` directly followed by ASCII letters that end at
/// whitespace, `:` or the end of the line.
fn split_command_line(line: &str) -> Option<(&str, &str)> {
    let after_hash = line.trim_start().strip_prefix('#')?;
    let word_end = after_hash
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(after_hash.len());
    if word_end == 0 {
        return None;
    }
    let (word, rest) = after_hash.split_at(word_end);
    let argument = match rest.chars().next() {
        None => "",
        Some(':') => &rest[1..],
        Some(c) if c.is_whitespace() => rest,
        Some(_) => return None,
    };
    Some((word, argument.trim()))
}

fn parse_command(line: usize, word: &str, argument: &str) -> Result<Command, CommandError> {
    let missing = |command, expected| CommandError::MissingArgument {
        line,
        command,
        expected,
    };
    let no_argument = |command, value| {
        if argument.is_empty() {
            Ok(value)
        } else {
            Err(CommandError::UnexpectedArgument {
                line,
                command,
                found: argument.to_string(),
            })
        }
    };
    match word.to_ascii_lowercase().as_str() {
        "status" => {
            if argument.is_empty() {
                return Err(missing(
                    "status",
                    "a status: open, in-progress, waiting-on-client, waiting-on-vendor or closed",
                ));
            }
            TicketStatus::parse(&single_spaced(argument))
                .map(Command::Status)
                .map_err(|reason| CommandError::Status { line, reason })
        }
        "priority" => {
            if argument.is_empty() {
                return Err(missing("priority", "a priority: low, medium or high"));
            }
            Priority::parse(argument)
                .map(Command::Priority)
                .map_err(|reason| CommandError::Priority { line, reason })
        }
        "category" => {
            if argument.is_empty() {
                return Err(missing("category", "a category name"));
            }
            Ok(Command::Category(single_spaced(argument)))
        }
        "assign" => {
            if argument.is_empty() {
                return Err(missing("assign", "a technician's name or address"));
            }
            Ok(Command::Assign(single_spaced(argument)))
        }
        "close" => no_argument("close", Command::Close),
        "note" => no_argument("note", Command::Note),
        "fwd" | "forward" => no_argument("fwd", Command::Forward),
        "time" => {
            if argument.is_empty() {
                return Err(missing("time", "the time worked, like 1h30 or 45m"));
            }
            parse_minutes(argument)
                .map(|minutes| Command::Time { minutes })
                .map_err(|problem| CommandError::Time {
                    line,
                    value: argument.to_string(),
                    problem,
                })
        }
        "requester" => {
            if argument.is_empty() {
                return Err(missing("requester", "the client's mail address"));
            }
            parse_requester(line, argument).map(Command::Requester)
        }
        _ => Err(CommandError::Unknown {
            line,
            word: word.to_string(),
        }),
    }
}

/// One address, bare or as `Name <address>`.
fn parse_requester(line: usize, argument: &str) -> Result<EmailAddress, CommandError> {
    let address = match (argument.rfind('<'), argument.ends_with('>')) {
        (Some(open), true) => &argument[open..],
        _ => {
            let count = argument.split_whitespace().count();
            if count > 1 {
                return Err(CommandError::SeveralRequesters { line, count });
            }
            argument
        }
    };
    EmailAddress::parse(address).map_err(|problem| CommandError::Requester {
        line,
        value: argument.to_string(),
        problem,
    })
}

/// Which earlier command, if any, the new one repeats or contradicts: each
/// setting may be given once (`#close` counts as a status), `#note` and
/// `#fwd` may harmlessly repeat.
fn repetition_error(
    line: usize,
    command: &Command,
    earlier: &[(usize, Command)],
) -> Option<CommandError> {
    let slot = |c: &Command| match c {
        Command::Status(_) | Command::Close => Some("status"),
        Command::Priority(_) => Some("priority"),
        Command::Category(_) => Some("category"),
        Command::Assign(_) => Some("assign"),
        Command::Time { .. } => Some("time"),
        Command::Requester(_) => Some("requester"),
        Command::Note | Command::Forward => None,
    };
    let this_slot = slot(command)?;
    earlier
        .iter()
        .find(|(_, previous)| slot(previous) == Some(this_slot))
        .map(|(earlier_line, previous)| CommandError::Repeated {
            line,
            command: command.keyword(),
            earlier: previous.keyword(),
            earlier_line: *earlier_line,
        })
}

/// Minutes worked from `1h30`, `1h 30m`, `1 hour 30 minutes`, `90m`,
/// `90 min`, `1.5h`, `1,5h`, `2h`, `1:30` or a bare number of minutes (`45`).
fn parse_minutes(input: &str) -> Result<u32, DurationProblem> {
    let compact: String = input
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    let minutes = if let Some((hours, minutes)) = compact.split_once(':') {
        let hours = whole_number(hours)?;
        if minutes.len() != 2 {
            return Err(DurationProblem::Unreadable);
        }
        let minutes = whole_number(minutes)?;
        if minutes >= 60 {
            return Err(DurationProblem::Unreadable);
        }
        hours.saturating_mul(60).saturating_add(minutes)
    } else {
        let (hours_part, minutes_part) = split_hours(&compact);
        let minutes_digits = minutes_part.map(strip_minute_unit).transpose()?;
        if hours_part.is_none() && minutes_digits.is_none() {
            return Err(DurationProblem::Unreadable);
        }
        let minutes = minutes_digits.map(whole_number).transpose()?.unwrap_or(0);
        match hours_part {
            None => minutes,
            Some(hours) => {
                if minutes >= 60 {
                    return Err(DurationProblem::Unreadable);
                }
                let hour_minutes = hours_in_minutes(hours)?;
                if hours.contains(['.', ',']) && minutes > 0 {
                    return Err(DurationProblem::Unreadable);
                }
                hour_minutes.saturating_add(minutes)
            }
        }
    };
    match minutes {
        0 => Err(DurationProblem::Zero),
        m if m > u64::from(MAX_MINUTES_PER_COMMAND) => Err(DurationProblem::TooLong),
        m => Ok(u32::try_from(m).expect("at most MAX_MINUTES_PER_COMMAND")),
    }
}

/// Splits `1h30m` into `Some("1")` and `Some("30m")`; `90m` into `None` and
/// `Some("90m")`; `2h` into `Some("2")` and `None`.
fn split_hours(compact: &str) -> (Option<&str>, Option<&str>) {
    const HOUR_UNITS: [&str; 5] = ["hours", "hour", "hrs", "hr", "h"];
    let number_end = compact
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(compact.len());
    let (number, after) = compact.split_at(number_end);
    for unit in HOUR_UNITS {
        if let Some(rest) = after.strip_prefix(unit) {
            let minutes = (!rest.is_empty()).then_some(rest);
            return (Some(number), minutes);
        }
    }
    (None, (!compact.is_empty()).then_some(compact))
}

/// The digits of `30m`, `30min`, `30 minutes` or `30`.
fn strip_minute_unit(part: &str) -> Result<&str, DurationProblem> {
    const MINUTE_UNITS: [&str; 5] = ["minutes", "minute", "mins", "min", "m"];
    let digits_end = part
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(part.len());
    let unit = &part[digits_end..];
    if unit.is_empty() || MINUTE_UNITS.contains(&unit) {
        Ok(&part[..digits_end])
    } else {
        Err(DurationProblem::Unreadable)
    }
}

fn whole_number(digits: &str) -> Result<u64, DurationProblem> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DurationProblem::Unreadable);
    }
    // More digits than fit are certainly too long, not unreadable.
    digits.parse().map_err(|_| DurationProblem::TooLong)
}

/// `1.5` or `1,5` hours in whole minutes, rounded to the nearest minute.
fn hours_in_minutes(hours: &str) -> Result<u64, DurationProblem> {
    let (whole, fraction) = match hours.split_once(['.', ',']) {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (hours, None),
    };
    let whole = if whole.is_empty() && fraction.is_some() {
        0
    } else {
        whole_number(whole)?
    };
    let fraction_minutes = match fraction {
        None => 0,
        Some(fraction) => {
            if fraction.is_empty()
                || fraction.len() > 4
                || !fraction.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(DurationProblem::Unreadable);
            }
            let value: u64 = fraction.parse().map_err(|_| DurationProblem::Unreadable)?;
            let scale = 10u64.pow(u32::try_from(fraction.len()).expect("at most four digits"));
            (value * 60 + scale / 2) / scale
        }
    };
    Ok(whole.saturating_mul(60).saturating_add(fraction_minutes))
}

/// `argument` with runs of whitespace made one space.
fn single_spaced(argument: &str) -> String {
    argument.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(text: &str) -> Vec<Command> {
        parse_staff_reply(text).expect("valid commands").commands
    }

    fn errors(text: &str) -> Vec<CommandError> {
        parse_staff_reply(text).expect_err("invalid commands")
    }

    fn minutes(argument: &str) -> Result<u32, DurationProblem> {
        parse_minutes(argument)
    }

    #[test]
    fn reads_every_command() {
        let reply = parse_staff_reply(
            "#status waiting-on-client\n#priority high\n#category network\n#assign alice\n#note\n#time 1h30\n#requester alice@customer.test\n#fwd\nHello",
        )
        .unwrap();
        assert_eq!(
            reply.commands,
            vec![
                Command::Status(TicketStatus::WaitingOnClient),
                Command::Priority(Priority::High),
                Command::Category("network".into()),
                Command::Assign("alice".into()),
                Command::Note,
                Command::Time { minutes: 90 },
                Command::Requester(EmailAddress::parse("alice@customer.test").unwrap()),
                Command::Forward,
            ]
        );
        assert_eq!(reply.body, "Hello");
    }

    #[test]
    fn close_is_its_own_command() {
        assert_eq!(commands("#close\nDone, thanks."), vec![Command::Close]);
    }

    #[test]
    fn forward_has_a_long_spelling() {
        assert_eq!(commands("#forward"), vec![Command::Forward]);
    }

    #[test]
    fn command_names_are_case_insensitive() {
        assert_eq!(
            commands("#STATUS Closed\n#Priority LOW\n#Note\n#FWD"),
            vec![
                Command::Status(TicketStatus::Closed),
                Command::Priority(Priority::Low),
                Command::Note,
                Command::Forward
            ]
        );
    }

    #[test]
    fn colon_after_the_command_word_is_accepted() {
        assert_eq!(
            commands("#status: in-progress\n#time:45"),
            vec![
                Command::Status(TicketStatus::InProgress),
                Command::Time { minutes: 45 }
            ]
        );
    }

    #[test]
    fn status_accepts_spaced_forms() {
        assert_eq!(
            commands("#status waiting on client"),
            vec![Command::Status(TicketStatus::WaitingOnClient)]
        );
        assert_eq!(
            commands("#status   Waiting   on   vendor"),
            vec![Command::Status(TicketStatus::WaitingOnVendor)]
        );
        assert_eq!(
            commands("#status in progress"),
            vec![Command::Status(TicketStatus::InProgress)]
        );
        assert_eq!(
            commands("#status waiting_on_client"),
            vec![Command::Status(TicketStatus::WaitingOnClient)]
        );
    }

    #[test]
    fn priority_accepts_its_aliases() {
        assert_eq!(
            commands("#priority urgent"),
            vec![Command::Priority(Priority::High)]
        );
        assert_eq!(
            commands("#priority normal"),
            vec![Command::Priority(Priority::Medium)]
        );
    }

    #[test]
    fn bad_status_names_the_line_and_the_choices() {
        let errs = errors("#status waiting");
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "line 1: #status: `waiting` is not one of open, in-progress, waiting-on-client, waiting-on-vendor, closed"
        );
    }

    #[test]
    fn bad_priority_is_an_error() {
        let errs = errors("#priority asap");
        assert!(
            matches!(&errs[0], CommandError::Priority { line: 1, .. }),
            "{errs:?}"
        );
        assert!(errs[0]
            .to_string()
            .contains("`asap` is not one of low, medium, high"));
    }

    #[test]
    fn unknown_command_is_an_error_naming_it() {
        let errs = errors("#frobnicate the widget\nHello");
        assert_eq!(
            errs,
            vec![CommandError::Unknown {
                line: 1,
                word: "frobnicate".into()
            }]
        );
        let message = errs[0].to_string();
        assert!(message.contains("`#frobnicate`"), "{message}");
        assert!(message.contains("#status"), "{message}");
    }

    #[test]
    fn misspelt_command_is_not_sent_as_text() {
        assert!(matches!(
            errors("#staus closed")[..],
            [CommandError::Unknown { line: 1, .. }]
        ));
    }

    #[test]
    fn all_errors_are_collected_with_their_lines() {
        let errs = errors(
            "#status waiting\n#priority asap\n#frobnicate\n#time 0\n#requester not-an-address\n#assign\n#close now\nHello",
        );
        let lines: Vec<usize> = errs.iter().map(CommandError::line).collect();
        assert_eq!(lines, vec![1, 2, 3, 4, 5, 6, 7], "{errs:#?}");
        assert!(matches!(errs[0], CommandError::Status { .. }));
        assert!(matches!(errs[1], CommandError::Priority { .. }));
        assert!(matches!(errs[2], CommandError::Unknown { .. }));
        assert!(matches!(
            errs[3],
            CommandError::Time {
                problem: DurationProblem::Zero,
                ..
            }
        ));
        assert!(matches!(errs[4], CommandError::Requester { .. }));
        assert!(matches!(
            errs[5],
            CommandError::MissingArgument {
                command: "assign",
                ..
            }
        ));
        assert!(matches!(
            errs[6],
            CommandError::UnexpectedArgument {
                command: "close",
                ..
            }
        ));
    }

    #[test]
    fn one_bad_command_stops_the_good_ones_too() {
        // Nothing is half-applied: the caller gets only the error.
        let errs = errors("#close\n#priority asap\nThanks");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line(), 2);
    }

    #[test]
    fn error_line_numbers_count_blank_lines() {
        let errs = errors("\n\n#priority asap");
        assert_eq!(errs[0].line(), 3);
        assert!(errs[0].to_string().starts_with("line 3: "));
    }

    #[test]
    fn arguments_are_required_where_needed() {
        for (text, command) in [
            ("#status", "status"),
            ("#priority", "priority"),
            ("#category", "category"),
            ("#assign   ", "assign"),
            ("#time", "time"),
            ("#requester", "requester"),
        ] {
            let errs = errors(text);
            assert!(
                matches!(&errs[..], [CommandError::MissingArgument { command: c, .. }] if *c == command),
                "{text:?}: {errs:?}"
            );
        }
    }

    #[test]
    fn argumentless_commands_refuse_arguments() {
        for (text, command) in [
            ("#note please", "note"),
            ("#close it", "close"),
            ("#fwd x", "fwd"),
        ] {
            let errs = errors(text);
            assert!(
                matches!(&errs[..], [CommandError::UnexpectedArgument { command: c, .. }] if *c == command),
                "{text:?}: {errs:?}"
            );
        }
        assert_eq!(
            errors("#note please")[0].to_string(),
            "line 1: #note takes nothing after it, but found `please`"
        );
    }

    #[test]
    fn assign_and_category_keep_what_was_written() {
        assert_eq!(
            commands("#assign Alice  Smith\n#category Network / VPN"),
            vec![
                Command::Assign("Alice Smith".into()),
                Command::Category("Network / VPN".into())
            ]
        );
        assert_eq!(
            commands("#assign bob@msp.test"),
            vec![Command::Assign("bob@msp.test".into())]
        );
    }

    #[test]
    fn requester_takes_one_address() {
        let alice = EmailAddress::parse("alice@customer.test").unwrap();
        assert_eq!(
            commands("#requester Alice@Customer.TEST"),
            vec![Command::Requester(alice.clone())]
        );
        assert_eq!(
            commands("#requester <alice@customer.test>"),
            vec![Command::Requester(alice.clone())]
        );
        assert_eq!(
            commands("#requester Alice Smith <alice@customer.test>"),
            vec![Command::Requester(alice)]
        );
        assert_eq!(
            errors("#requester alice@customer.test bob@customer.test"),
            vec![CommandError::SeveralRequesters { line: 1, count: 2 }]
        );
        let errs = errors("#requester alice");
        assert_eq!(
            errs,
            vec![CommandError::Requester {
                line: 1,
                value: "alice".into(),
                problem: EmailAddressError::Shape
            }]
        );
    }

    #[test]
    fn repeated_or_contradicting_settings_are_errors() {
        assert_eq!(
            errors("#priority high\n#priority low"),
            vec![CommandError::Repeated {
                line: 2,
                command: "priority",
                earlier: "priority",
                earlier_line: 1
            }]
        );
        assert_eq!(
            errors("#status open\n\n#close")[0].to_string(),
            "line 3: #close repeats or contradicts #status on line 1"
        );
        assert_eq!(errors("#time 1h\n#time 30m").len(), 1);
    }

    #[test]
    fn note_and_forward_may_repeat() {
        assert_eq!(commands("#note\n#note"), vec![Command::Note, Command::Note]);
    }

    #[test]
    fn time_accepts_the_usual_forms() {
        for (input, expected) in [
            ("1h30", 90),
            ("1h30m", 90),
            ("1h 30m", 90),
            ("1h 30", 90),
            ("1 h 30 m", 90),
            ("90m", 90),
            ("90 min", 90),
            ("90 minutes", 90),
            ("1.5h", 90),
            ("1,5h", 90),
            (".5h", 30),
            ("1.25 hours", 75),
            ("0.1h", 6),
            ("45", 45),
            ("2h", 120),
            ("2 hrs", 120),
            ("1 hour 15 minutes", 75),
            ("1:30", 90),
            ("0:05", 5),
            ("24h", 1440),
            ("1440", 1440),
            ("1H30M", 90),
        ] {
            assert_eq!(minutes(input), Ok(expected), "{input:?}");
        }
    }

    #[test]
    fn time_refuses_zero_absurd_and_garbage() {
        for (input, problem) in [
            ("0", DurationProblem::Zero),
            ("0h", DurationProblem::Zero),
            ("0h 0m", DurationProblem::Zero),
            ("0:00", DurationProblem::Zero),
            ("25h", DurationProblem::TooLong),
            ("24h1", DurationProblem::TooLong),
            ("1441", DurationProblem::TooLong),
            ("99999999999999999999999", DurationProblem::TooLong),
            ("99999999999999999999999h", DurationProblem::TooLong),
            ("soon", DurationProblem::Unreadable),
            ("1.5", DurationProblem::Unreadable),
            ("h", DurationProblem::Unreadable),
            ("m", DurationProblem::Unreadable),
            ("1h75", DurationProblem::Unreadable),
            ("1.5h30", DurationProblem::Unreadable),
            ("1d", DurationProblem::Unreadable),
            ("-30m", DurationProblem::Unreadable),
            ("1:5", DurationProblem::Unreadable),
            ("1:75", DurationProblem::Unreadable),
            ("1..5h", DurationProblem::Unreadable),
            ("1.h", DurationProblem::Unreadable),
            ("30m 1h", DurationProblem::Unreadable),
            ("１h", DurationProblem::Unreadable),
        ] {
            assert_eq!(minutes(input), Err(problem), "{input:?}");
        }
    }

    #[test]
    fn time_errors_quote_the_value() {
        assert_eq!(
            errors("#time 30h")[0].to_string(),
            "line 1: #time: `30h` is more than 24 hours in one command"
        );
        assert!(errors("#time soon")[0]
            .to_string()
            .contains("`soon` is not a duration like 1h30"));
    }

    #[test]
    fn body_is_the_rest_without_leading_blank_lines() {
        let reply = parse_staff_reply("\n  \n#status closed\n\n\nHi Alice,\n\nfixed.\n").unwrap();
        assert_eq!(reply.commands, vec![Command::Status(TicketStatus::Closed)]);
        assert_eq!(reply.body, "Hi Alice,\n\nfixed.\n");
    }

    #[test]
    fn reply_without_commands_is_all_body() {
        let reply = parse_staff_reply("\n\nHi Alice,\nfixed.").unwrap();
        assert!(reply.commands.is_empty());
        assert_eq!(reply.body, "Hi Alice,\nfixed.");
    }

    #[test]
    fn reply_of_only_commands_has_empty_body() {
        let reply = parse_staff_reply("#close\n\n").unwrap();
        assert_eq!(reply.commands, vec![Command::Close]);
        assert_eq!(reply.body, "");
        assert_eq!(parse_staff_reply("").unwrap().body, "");
    }

    #[test]
    fn commands_after_prose_are_body_text() {
        let reply =
            parse_staff_reply("#note\nChecked the logs.\n#status closed\n#frobnicate").unwrap();
        assert_eq!(reply.commands, vec![Command::Note]);
        assert_eq!(reply.body, "Checked the logs.\n#status closed\n#frobnicate");
    }

    #[test]
    fn prose_starting_with_hash_is_body() {
        for text in [
            "#1 priority for me is your printer.\n#status closed",
            "# Summary\nAll good.",
            "## Steps\n1. reboot",
            "#T-1042 is the same problem.",
            "#!/bin/sh\necho hi",
            "#\nnothing",
            "#status-update follows",
        ] {
            let reply = parse_staff_reply(text).unwrap();
            assert!(reply.commands.is_empty(), "{text:?}");
            assert_eq!(reply.body, text, "{text:?}");
        }
    }

    #[test]
    fn body_after_commands_may_contain_hashes() {
        let reply =
            parse_staff_reply("#priority low\n# Next steps\n#1 reboot\n#status closed").unwrap();
        assert_eq!(reply.commands, vec![Command::Priority(Priority::Low)]);
        assert_eq!(reply.body, "# Next steps\n#1 reboot\n#status closed");
    }

    #[test]
    fn crlf_line_endings() {
        let reply =
            parse_staff_reply("#status closed\r\n#time 45\r\n\r\nHi,\r\ndone.\r\n").unwrap();
        assert_eq!(
            reply.commands,
            vec![
                Command::Status(TicketStatus::Closed),
                Command::Time { minutes: 45 }
            ]
        );
        assert_eq!(reply.body, "Hi,\r\ndone.\r\n");
        assert_eq!(commands("#note\r\n"), vec![Command::Note]);
    }

    #[test]
    fn leading_whitespace_before_the_hash() {
        assert_eq!(
            commands("   #status closed\n\t#priority high\n\u{a0}#note"),
            vec![
                Command::Status(TicketStatus::Closed),
                Command::Priority(Priority::High),
                Command::Note
            ]
        );
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        assert_eq!(commands("\u{feff}#close"), vec![Command::Close]);
    }

    #[test]
    fn quoted_commands_are_not_commands() {
        let reply = parse_staff_reply("> #status closed\nok").unwrap();
        assert!(reply.commands.is_empty());
    }

    #[test]
    fn commands_serialize_with_their_keyword() {
        let json = serde_json::to_value(commands(
            "#status waiting on client\n#time 1h\n#requester alice@customer.test\n#note\n#fwd\n",
        ))
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"command": "status", "value": "waiting-on-client"},
                {"command": "time", "value": {"minutes": 60}},
                {"command": "requester", "value": "alice@customer.test"},
                {"command": "note"},
                {"command": "fwd"},
            ])
        );
    }
}
