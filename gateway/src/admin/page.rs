//! Pages of the listings that grow with the cluster (`GET /users`, `GET /service-accounts`):
//! `?limit=N` items (1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`]) whose names come after
//! `?after=NAME`, in name order, and `next`, the `after` of the following page (absent on
//! the last one), as the KMS rewrap pages its cursor.

use crate::admin::error::AdminError;
use crate::admin::Call;

/// Items a page holds when the caller names no limit.
pub const DEFAULT_LIMIT: usize = 1000;
/// The most items a page holds.
pub const MAX_LIMIT: usize = 1000;

/// Which page a listing request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    after: Option<String>,
    limit: usize,
}

impl Page {
    /// The page `call` asks for.
    pub fn of(call: &Call<'_>) -> Result<Self, AdminError> {
        Ok(Self { after: call.query_value("after").map(str::to_owned), limit: call.limit(DEFAULT_LIMIT, MAX_LIMIT)? })
    }

    /// Whether an item named `name` comes after this page's start.
    pub fn starts_before(&self, name: &str) -> bool {
        self.after.as_deref().is_none_or(|after| name > after)
    }

    /// Of `items` (in name order, those before the start already left out), the page's and the
    /// `after` of the next page when more remain.
    pub fn cut<T>(&self, items: Vec<T>, name: impl Fn(&T) -> &str) -> (Vec<T>, Option<String>) {
        let mut items = items;
        if items.len() <= self.limit {
            return (items, None);
        }
        items.truncate(self.limit);
        let next = items.last().map(|item| name(item).to_owned());
        (items, next)
    }

    /// The most items of the page, plus one to tell whether more remain.
    pub fn probe(&self) -> usize {
        self.limit + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_holds_its_limit_after_its_start_and_names_the_next() {
        let page = Page { after: Some("b".into()), limit: 2 };
        let names = ["a", "b", "c", "d", "e"];
        let wanted = names.iter().filter(|n| page.starts_before(n)).take(page.probe()).collect::<Vec<_>>();
        assert_eq!(page.cut(wanted, |n| n), (vec![&"c", &"d"], Some("d".to_owned())));
        let last = Page { after: Some("d".into()), limit: 2 };
        let wanted = names.iter().filter(|n| last.starts_before(n)).take(last.probe()).collect::<Vec<_>>();
        assert_eq!(last.cut(wanted, |n| n), (vec![&"e"], None));
    }
}
