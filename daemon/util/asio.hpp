// The one place Asio is included from. Boost 1.74's awaitable.hpp uses std::exchange without
// including <utility>; GCC 12 in C++20 mode then fails to compile it, so <utility> comes first.
#pragma once
#include <utility>
#include <boost/asio.hpp>
