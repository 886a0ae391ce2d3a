//! Fictional people and places of the demo region, Ravensdale.
//!
//! Every name here is invented. Telephone numbers come from the ranges Ofcom
//! keeps for drama (`01632 960xxx`, `07700 900xxx`), so none can ring a real
//! line.

/// Female given names.
pub(crate) const FEMALE_GIVEN: [&str; 48] = [
    "Margaret",
    "Joan",
    "Dorothy",
    "Patricia",
    "Jean",
    "Barbara",
    "Sheila",
    "Brenda",
    "Maureen",
    "Irene",
    "Elsie",
    "Doreen",
    "Kathleen",
    "Betty",
    "Susan",
    "Linda",
    "Christine",
    "Janet",
    "Carol",
    "Elaine",
    "Julie",
    "Karen",
    "Tracey",
    "Amanda",
    "Sarah",
    "Emma",
    "Rebecca",
    "Laura",
    "Hannah",
    "Sophie",
    "Chloe",
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Nasreen",
    "Shazia",
    "Farzana",
    "Parveen",
    "Samina",
    "Bushra",
    "Agnieszka",
    "Grace",
    "Ruby",
    "Freya",
    "Mary",
    "Ellen",
    "Nora",
];

/// Male given names.
pub(crate) const MALE_GIVEN: [&str; 48] = [
    "John", "William", "George", "Kenneth", "Ronald", "Dennis", "Derek", "Brian", "Peter",
    "Michael", "David", "Alan", "Keith", "Trevor", "Colin", "Graham", "Stephen", "Paul", "Andrew",
    "Mark", "Gary", "Darren", "Lee", "Craig", "James", "Thomas", "Daniel", "Matthew", "Ryan",
    "Jack", "Harry", "Oliver", "Noah", "Leo", "Mohammed", "Imran", "Tariq", "Zubair", "Asif",
    "Nadeem", "Piotr", "Tomasz", "Arthur", "Albert", "Frank", "Harold", "Walter", "Stanley",
];

/// Family names.
pub(crate) const FAMILY: [&str; 72] = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Wilson",
    "Wood",
    "Walker",
    "Robinson",
    "Wright",
    "Thompson",
    "Hughes",
    "Holmes",
    "Firth",
    "Sutcliffe",
    "Greenwood",
    "Ackroyd",
    "Butterworth",
    "Haigh",
    "Lister",
    "Mitchell",
    "Shaw",
    "Barker",
    "Booth",
    "Crowther",
    "Dyson",
    "Hirst",
    "Midgley",
    "Pickles",
    "Rhodes",
    "Sugden",
    "Tattersall",
    "Whiteley",
    "Horsfall",
    "Illingworth",
    "Jagger",
    "Kershaw",
    "Lumb",
    "Marsden",
    "Naylor",
    "Priestley",
    "Ramsden",
    "Stansfield",
    "Thornton",
    "Uttley",
    "Wadsworth",
    "Hussain",
    "Khan",
    "Ahmed",
    "Akhtar",
    "Begum",
    "Iqbal",
    "Mahmood",
    "Patel",
    "Rashid",
    "Shah",
    "Kowalski",
    "Nowak",
    "Wisniewski",
    "O'Brien",
    "Murphy",
    "Kelly",
    "Campbell",
    "Stewart",
    "Evans",
    "Roberts",
    "Lewis",
    "Clarke",
    "Turner",
    "Hall",
    "Green",
    "Baxter",
    "Hepworth",
];

/// Street names.
pub(crate) const STREETS: [&str; 40] = [
    "Mill Lane",
    "Church Street",
    "Moor View",
    "Beck Side",
    "Chapel Fold",
    "Station Road",
    "Victoria Terrace",
    "Albert Street",
    "Hollin Lane",
    "Ings Road",
    "Westfield Crescent",
    "Park Avenue",
    "Fern Bank",
    "Heather Close",
    "Weavers Row",
    "Spinners Way",
    "Canal Side",
    "Quarry Hill",
    "Moorland Road",
    "Valley Drive",
    "Rookery Lane",
    "Oak Terrace",
    "Sycamore Grove",
    "Cross Street",
    "Nab Lane",
    "Back Lane",
    "Top Row",
    "Low Green",
    "High Street",
    "Market Street",
    "Bridge Street",
    "Water Lane",
    "Throstle Nest",
    "Clough Road",
    "Edge View",
    "Lilac Avenue",
    "Beech Grove",
    "Raven Court",
    "Pennine Way",
    "Dale Road",
];

/// A town of the region with its postcode district and GP practice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Town {
    pub name: &'static str,
    /// Postcode outward code prefix, e.g. `HX7` (the district digit follows
    /// the area letters; one district per town).
    pub outward: &'static str,
}

/// The towns, one per GP practice (same order as the practices).
pub(crate) const TOWNS: [Town; 4] = [
    Town {
        name: "Hollinbeck",
        outward: "HX7",
    },
    Town {
        name: "Ravensby",
        outward: "HX3",
    },
    Town {
        name: "Ackerby",
        outward: "HD9",
    },
    Town {
        name: "Thwaite Bridge",
        outward: "BD22",
    },
];

/// Letters allowed in the last two places of a UK postcode's inward code.
pub(crate) const INWARD_LETTERS: [char; 20] = [
    'A', 'B', 'D', 'E', 'F', 'G', 'H', 'J', 'L', 'N', 'P', 'Q', 'R', 'S', 'T', 'U', 'W', 'X', 'Y',
    'Z',
];

/// Whether `postcode` has the shape of a UK postcode (`A9 9AA`, `A99 9AA`,
/// `AA9 9AA`, `AA99 9AA`, `A9A 9AA`, `AA9A 9AA`), with the single space.
pub fn postcode_format_is_valid(postcode: &str) -> bool {
    let Some((outward, inward)) = postcode.split_once(' ') else {
        return false;
    };
    let inward: Vec<char> = inward.chars().collect();
    let inward_ok = matches!(
        inward.as_slice(),
        [d, a, b] if d.is_ascii_digit() && INWARD_LETTERS.contains(a) && INWARD_LETTERS.contains(b)
    );
    let o: Vec<char> = outward.chars().collect();
    let up = |c: &char| c.is_ascii_uppercase();
    let dg = |c: &char| c.is_ascii_digit();
    let outward_ok = match o.as_slice() {
        [a, d] => up(a) && dg(d),
        [a, b, c] => up(a) && ((dg(b) && dg(c)) || (up(b) && dg(c)) || (dg(b) && up(c))),
        [a, b, c, d] => up(a) && up(b) && dg(c) && (dg(d) || up(d)),
        _ => false,
    };
    inward_ok && outward_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postcode_shapes() {
        for ok in [
            "LS6 2AB", "HX7 5QT", "BD22 8NX", "M1 1AA", "W1A 0AX", "EC1A 1BB", "B33 8TH",
        ] {
            assert!(postcode_format_is_valid(ok), "{ok}");
        }
        for bad in [
            "LS62AB", "ls6 2ab", "LS6 2AC", "LS6  2AB", "6LS 2AB", "LS6 AB2", "",
        ] {
            assert!(!postcode_format_is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn town_districts_are_valid_outward_codes() {
        for town in TOWNS {
            assert!(postcode_format_is_valid(&format!("{} 1AB", town.outward)));
        }
    }
}
